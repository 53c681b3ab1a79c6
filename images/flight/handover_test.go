package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/rig"
)

// fleet is one drone in the air under v1 with the hand-over machinery: the
// embedded NATS server, drone-sim, the process runtime and a coordinator.
type fleet struct {
	t     *testing.T
	ns    *handoff.Server
	hooks *hookedRuntime
	sim   *rig.Sim
	rt    *rig.Runtime
	nc    *nats.Conn
	coord *handoff.Coordinator
	logs  *syncBuffer
	hover int64
	owner string
}

func newFleet(t *testing.T, simEnv ...string) *fleet {
	t.Helper()
	ctx := context.Background()
	f := &fleet{t: t, logs: &syncBuffer{}, owner: "v1-0"}
	ns, err := handoff.StartServer(handoff.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	f.ns = ns
	if f.sim, err = rig.StartSim(ctx, bins.Sim, t.TempDir(), simEnv, f.logs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sim.Stop() })
	f.rt = &rig.Runtime{Logs: f.logs, Grace: 10 * time.Second, Env: []string{
		"FLIGHT_BUS=sim:" + f.sim.Socket, "FLIGHT_NATS=" + ns.URL(), "FLIGHT_PATTERN=hover",
	}}
	t.Cleanup(f.rt.KillAll)
	f.rt.Prepare(f.owner, bins.Flight)
	if _, err := f.rt.StartOwner(f.owner); err != nil {
		t.Fatal(err)
	}
	if f.hover, err = f.sim.WaitHover(ctx, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, tail(f.logs.String(), 3000))
	}
	if f.nc, err = nats.Connect(ns.URL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	f.hooks = &hookedRuntime{Runtime: f.rt}
	if f.coord, err = handoff.NewCoordinator(f.nc, "flight", f.hooks, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.coord.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs (tail):\n%s", tail(f.logs.String(), 6000))
		}
	})
	return f
}

// hookedRuntime lets a test act just before the coordinator stops an
// instance.
type hookedRuntime struct {
	*rig.Runtime
	beforeStop func(instance string)
}

func (h *hookedRuntime) Stop(ctx context.Context, instance string) error {
	if h.beforeStop != nil {
		h.beforeStop(instance)
	}
	return h.Runtime.Stop(ctx, instance)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// update hands over from the current owner to a new instance running bin.
func (f *fleet) update(plan handoff.Plan, bin string, env ...string) (handoff.Result, error) {
	f.rt.Prepare(plan.Candidate, bin, env...)
	if plan.Owner == "" {
		plan.Owner = f.owner
	}
	if plan.Probation == 0 {
		plan.Probation = time.Second
	}
	res, err := f.coord.Run(context.Background(), plan)
	if res.Outcome == handoff.OutcomeCommitted {
		f.owner = plan.Candidate
	}
	return res, err
}

// report is the referee over [from, to].
func (f *fleet) report(from, to int64) (r struct {
	MaxGapMs, P99GapMs, AttP99, AttMax float64
	Double, Stale                      int
	Crashed, Airborne                  bool
	Writers                            []string
}) {
	f.t.Helper()
	rep, err := f.sim.Report(context.Background(), from, to)
	if err != nil {
		f.t.Fatal(err)
	}
	r.MaxGapMs, r.P99GapMs, r.AttP99, r.AttMax = rep.MaxGapMs, rep.P99GapMs, rep.AttErrP99Deg, rep.AttErrMaxDeg
	r.Double, r.Stale, r.Crashed, r.Airborne, r.Writers = rep.DoubleDrive, rep.StaleRefused, rep.Crashed, rep.Airborne, rep.Writers
	return r
}

// TestConsecutiveHandovers: ten hand-overs v1 -> v2 -> v1 ... in gusts,
// judged by the referee: zero double drive, no crash, and no motor-update
// gap at a cut-over beyond one tick on top of the steady state's jitter.
func TestConsecutiveHandovers(t *testing.T) {
	f := newFleet(t, "SIM_GUST_N=0.3", "SIM_NOISE=1")
	v2 := v2Bin
	time.Sleep(time.Second)
	steadyFrom := mono.Now()
	time.Sleep(2 * time.Second)
	steady := f.report(steadyFrom, mono.Now())
	t.Logf("steady: gap max %.2f ms p99 %.2f ms, tilt p99 %.2f°", steady.MaxGapMs, steady.P99GapMs, steady.AttP99)

	const n = 10
	var worst float64
	for i := 1; i <= n; i++ {
		bin := v2
		if i%2 == 0 {
			bin = bins.Flight
		}
		cand := fmt.Sprintf("%s-%d", map[bool]string{true: "v2", false: "v1"}[i%2 == 1], i)
		res, err := f.update(handoff.Plan{Candidate: cand}, bin)
		if err != nil {
			t.Fatalf("hand-over %d: %v (%+v)", i, err, res)
		}
		w := f.report(res.CutoverNs-int64(100*time.Millisecond), res.CutoverNs+int64(150*time.Millisecond))
		t.Logf("hand-over %d to %s at tick %d: sync %.0f ms, window gap max %.2f ms, tilt max %.2f°, double %d, writers %v",
			i, cand, res.CutoverTick, res.SyncMs, w.MaxGapMs, w.AttMax, w.Double, w.Writers)
		worst = max(worst, w.MaxGapMs)
		if w.Double != 0 || w.Crashed {
			t.Fatalf("hand-over %d: double drive %d, crashed %v", i, w.Double, w.Crashed)
		}
	}
	all := f.report(f.hover, mono.Now())
	if all.Double != 0 || all.Crashed || !all.Airborne {
		t.Fatalf("whole flight: double drive %d, crashed %v, airborne %v", all.Double, all.Crashed, all.Airborne)
	}
	// One tick (2.5 ms) on top of the steady state's worst gap, with a
	// floor for a loaded machine: the steady windows here saw 3-6 ms.
	bound := max(steady.MaxGapMs, 6) + 2.5
	if os.Getenv("CI") != "" {
		bound += 10 // a shared CI machine's scheduler jitter, not the protocol
	}
	t.Logf("worst cut-over window gap %.2f ms (bound %.2f ms)", worst, bound)
	if worst > bound {
		t.Fatalf("a cut-over window's motor gap %.2f ms exceeds %.2f ms", worst, bound)
	}
}
