// Command skyswap-bench measures flight continuity with the referee and
// prints one JSON object per benchmark on stdout. The binaries are taken
// from the directory this program is in (make bench builds them into bin/).
//
//	hover:    20 s of hover in gusts with sensor noise after take-off.
//	handoff:  one line per strategy: 20 consecutive v1 <-> v2 hand-overs
//	          (handoff), 6 stateless updates each for the baselines
//	          (stop-start, start-then-stop), same simulator settings.
//	camera:   v1 hands over to v2 (which has the camera), then 10 hand-overs
//	          from one v2 instance to the next: the frame rate, the longest
//	          gap in delivered frames across a hand-over, images lost.
//	update:   the product path (root and containerd): drone-agent deploys
//	          flight v1 from a loopback registry, then 4 signed updates
//	          alternate v2 and v1 over MQTT; command-to-control time, the
//	          motor gaps, bytes pulled against the changed layer, the
//	          agent's memory and its arm64 binary size.
//	ground:   dronectl ground with a headless Chromium on its page: 30 s of
//	          a recorded flight's telemetry replayed over MQTT under 10
//	          drone ids; the delay from each message's publication to the
//	          page's DOM showing it, and the ground's memory and CPU.
//
//	rollout:  two lines: flight v2 over 1,000 simulated drones (drone-swarm,
//	          the real agent code with a simulated runtime, each its own
//	          MQTT client) in four waves (1,10%,50%,100%) through dronectl
//	          ground on a three-node NATS cluster (MQTT + JetStream): the
//	          time, the commands the drones received, duplicates (sent
//	          twice) and lost (never received), the ground's memory and CPU;
//	          then the same with one broker node killed in the middle of the
//	          second wave.
//
//	soak:     the product path again (root and containerd), one line per
//	          case: SOAK_UPDATES signed updates (default 4; make soak: 50)
//	          through dronectl push, alternating v2 and v1 in 1 N gusts, at
//	          each of SOAK_RATES (250,400,1000 Hz), first quiet, then beside
//	          a CPU hog (a busy loop per core, in its own cgroup), with the
//	          flight loop and the simulator under SCHED_FIFO as on a drone
//	          (SOAK_RT=0: ordinary scheduling): how many
//	          commit, abort or revert, the agent's own retries, take-backs
//	          (false ones: the owner was still writing), double drive, the
//	          motor gaps at the cut-overs against the steady ones, and
//	          command to control.
//
// BENCH=hover,handoff,camera,update,ground,rollout,soak (the default: all)
// picks some.
//
// `skyswap-bench latency-probe` is the soak's machine-latency probe
// (rig.RunLatencyProbe), which the soak starts as a process of its own.
//
// SIGINT or SIGTERM ends the run at the next step (a soak's next update)
// and tears down what it started.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/rig"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == latencyProbeArg {
		if err := rig.RunLatencyProbe(context.Background(), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "skyswap-bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "skyswap-bench:", err)
		os.Exit(1)
	}
}

// env is what every benchmark runs with.
type env struct {
	dir      string // the binaries
	bins     rig.Binaries
	v2       string
	simEnv   []string
	logs     io.Writer
	logFile  string
	coordLog *slog.Logger
}

// benches are the benchmarks in the order they run; each prints its lines.
var benches = []struct {
	name string
	run  func(context.Context, env) error
}{
	{"hover", func(ctx context.Context, e env) error { return benchHover(ctx, e.bins, e.simEnv, e.logs) }},
	{"handoff", func(ctx context.Context, e env) error {
		return benchHandoff(ctx, e.bins, e.v2, e.simEnv, e.logs, e.coordLog)
	}},
	{"camera", benchCamera},
	{"update", func(ctx context.Context, e env) error { return emitLine(benchUpdates(ctx, e.dir, 4, e.logs)) }},
	{"ground", func(ctx context.Context, e env) error { return emitLine(benchGround(ctx, e.dir, e.logs)) }},
	{"rollout", func(ctx context.Context, e env) error {
		for _, kill := range []bool{false, true} {
			if err := emitLine(benchRollout(ctx, e.dir, kill, e.logs)); err != nil {
				return err
			}
		}
		return nil
	}},
	{"soak", func(ctx context.Context, e env) error { return benchSoak(ctx, e.dir, e.logs) }},
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	e := env{dir: filepath.Dir(self), simEnv: []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"}}
	e.bins = rig.Binaries{Sim: filepath.Join(e.dir, "drone-sim"), Flight: filepath.Join(e.dir, "flight")}
	e.v2 = filepath.Join(e.dir, "flight-v2")
	for _, b := range []string{e.bins.Sim, e.bins.Flight, e.v2} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run make bench (it builds bin/ first)", b)
		}
	}
	want, err := chosen(os.Getenv("BENCH"))
	if err != nil {
		return err
	}
	e.logFile = filepath.Join(os.TempDir(), "skyswap-bench.log")
	logs, err := os.Create(e.logFile)
	if err != nil {
		return err
	}
	defer logs.Close()
	e.logs, e.coordLog = logs, slog.New(slog.NewJSONHandler(logs, nil))
	fmt.Fprintln(os.Stderr, "skyswap-bench: process logs in", e.logFile)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, b := range benches {
		if !want[b.name] || ctx.Err() != nil {
			continue
		}
		if err := b.run(ctx, e); err != nil {
			return fmt.Errorf("%s: %w (process logs: %s)", b.name, err, e.logFile)
		}
	}
	return nil
}

// chosen reads BENCH: a comma-separated list of benchmarks; "" = all.
func chosen(list string) (map[string]bool, error) {
	want := map[string]bool{}
	var names []string
	for _, b := range benches {
		names = append(names, b.name)
		want[b.name] = list == ""
	}
	if list == "" {
		return want, nil
	}
	for _, b := range strings.Split(list, ",") {
		b = strings.TrimSpace(b)
		if _, ok := want[b]; !ok {
			return nil, fmt.Errorf("BENCH=%q: %q is not a benchmark (%s)", list, b, strings.Join(names, ", "))
		}
		want[b] = true
	}
	return want, nil
}

// emitLine prints a benchmark's one line.
func emitLine[T any](line T, err error) error {
	if err != nil {
		return err
	}
	return emit(line)
}

func benchCamera(ctx context.Context, e env) error {
	r, err := rig.CameraSeries(ctx, rig.CameraSeriesConfig{
		Fleet: rig.FleetConfig{Sim: e.bins.Sim, Flight: e.bins.Flight, SimEnv: e.simEnv, FlightEnv: []string{"FLIGHT_PATTERN=hover"},
			Logs: e.logs, Log: e.coordLog},
		V2: e.v2,
	})
	if err != nil {
		return err
	}
	return emit(cameraLine{Bench: "camera", CameraSeriesResult: r})
}

func benchHover(ctx context.Context, bins rig.Binaries, simEnv []string, logs io.Writer) error {
	const seconds = 20
	res, err := rig.FlyHover(ctx, bins, rig.HoverOpts{
		Seconds:   seconds,
		SimEnv:    simEnv,
		FlightEnv: []string{"FLIGHT_PATTERN=hover"},
		Logs:      logs,
	})
	if err != nil {
		return fmt.Errorf("hover: %w", err)
	}
	w := res.Window
	if err := emit(hoverLine{
		Bench: "hover", RateHz: 400, Seconds: r3(w.Seconds), Updates: w.Updates,
		SteadyMaxGapMs: r3(w.MaxGapMs), P99GapMs: r3(w.P99GapMs), MeanGapMs: r3(w.MeanGapMs),
		AttErrP99Deg: r3(w.AttErrP99Deg), AltErrP99M: r3(w.AltErrP99M),
		TakeoffS: r3(res.TakeoffS), Crashed: res.Flight.Crashed,
	}); err != nil {
		return err
	}
	return nil
}

func benchHandoff(ctx context.Context, bins rig.Binaries, v2 string, simEnv []string, logs io.Writer, coordLog *slog.Logger) error {
	for _, st := range []struct {
		s strategy.Strategy
		n int
	}{{strategy.Handoff, 20}, {strategy.StopStart, 6}, {strategy.StartThenStop, 6}} {
		r, err := rig.Series(ctx, rig.SeriesConfig{
			Fleet: rig.FleetConfig{Sim: bins.Sim, Flight: bins.Flight, SimEnv: simEnv, FlightEnv: []string{"FLIGHT_PATTERN=hover"},
				Logs: logs, Log: coordLog},
			// A short probation: this bench measures the cut-overs.
			V2: v2, Strategy: st.s, N: st.n, Probation: time.Second,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", st.s, err)
		}
		if err := emit(handoffLine{
			Bench: "handoff", Strategy: r.Strategy, RateHz: 400, Handoffs: r.N,
			MaxGapMs: r3(r.MaxGapMs), SteadyMaxGapMs: r3(r.SteadyMaxGapMs), DoubleDrive: r.DoubleDrive,
			StaleRefused: r.StaleRefused, AttRatio: r3(r.AttRatio), SteadyAttRatio: r3(r.SteadyAttRatio), CutoverToCommitMs: r3(r.CutoverToCommitMs),
			Crashed: r.Crashed,
		}); err != nil {
			return err
		}
	}
	return nil
}

// cameraLine is the camera benchmark.
type cameraLine struct {
	Bench string `json:"bench"`
	rig.CameraSeriesResult
}

// handoffLine is one strategy's hand-over benchmark, fields in print order.
type handoffLine struct {
	Bench             string  `json:"bench"`
	Strategy          string  `json:"strategy"`
	RateHz            int     `json:"rate_hz"`
	Handoffs          int     `json:"handoffs"`
	MaxGapMs          float64 `json:"max_gap_ms"`
	SteadyMaxGapMs    float64 `json:"steady_max_gap_ms"`
	DoubleDrive       int     `json:"double_drive"`
	StaleRefused      int     `json:"stale_refused"`
	AttRatio          float64 `json:"att_ratio"`
	SteadyAttRatio    float64 `json:"steady_att_ratio"`
	CutoverToCommitMs float64 `json:"cutover_to_commit_ms"`
	Crashed           bool    `json:"crashed"`
}

// hoverLine is the hover benchmark's output, fields in print order.
type hoverLine struct {
	Bench          string  `json:"bench"`
	RateHz         int     `json:"rate_hz"`
	Seconds        float64 `json:"seconds"`
	Updates        int     `json:"updates"`
	SteadyMaxGapMs float64 `json:"steady_max_gap_ms"`
	P99GapMs       float64 `json:"p99_gap_ms"`
	MeanGapMs      float64 `json:"mean_gap_ms"`
	AttErrP99Deg   float64 `json:"att_err_p99_deg"`
	AltErrP99M     float64 `json:"alt_err_p99_m"`
	TakeoffS       float64 `json:"takeoff_s"`
	Crashed        bool    `json:"crashed"`
}

func emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(b))
	return err
}

func r3(v float64) float64 { return math.Round(v*1000) / 1000 }
