package rig

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/referee"
)

// SoakConfig configures Soak. The zero value of each optional field means
// the default noted beside it.
type SoakConfig struct {
	// Stack is the product to run (Dir, Sim and Agent required). Soak adds
	// the rate to its SimEnv and AppEnv and 1 N gusts unless SimEnv sets
	// SIM_GUST_N.
	Stack    StackConfig
	Dronectl string // the dronectl binary (required): every update is `dronectl push`
	RateHz   int    // the flight loop's and the referee's rate; 0 = 400
	Updates  int    // signed updates, alternating v2 and v1; 0 = 10
	Hogs     int    // busy-looping processes beside the flight; 0 = none
	// Ordinary runs the flight loop and the simulator under ordinary
	// scheduling; false = both under SCHED_FIFO, as on a drone
	// (deploy/README.md): see RealTimeEnv.
	Ordinary bool
	// Probe is the latency probe's command (RunLatencyProbe: skyswap-bench
	// latency-probe), which says what the machine itself cost a real-time
	// thread in the same windows; nil = none.
	Probe []string
}

// RealTimeEnv is what puts a soak's flight under SCHED_FIFO, as the
// drone's deployment does: the simulator (standing in for the hardware, so
// above the loop), the flight loop, and the agent's grant that lets the
// containers take it, 300 ms per second each (the loop's thread used 80 ms
// per second at 1000 Hz beside the CPU hog on the 2-vCPU VM).
var RealTimeEnv = struct{ Sim, App, Agent []string }{
	Sim:   []string{"SIM_RT_PRIO=60"},
	App:   []string{"FLIGHT_RT_PRIO=50"},
	Agent: []string{"AGENT_APP_RT_MS=300"},
}

// SoakResult is what Soak measured, in the bench's print order.
type SoakResult struct {
	RateHz int    `json:"rate_hz"`
	Load   string `json:"load"` // quiet, or hog:<n processes>
	// RealTime: the flight loop and the simulator ran under SCHED_FIFO.
	RealTime bool `json:"real_time"`
	Updates  int  `json:"updates"`
	// Committed counts the updates whose `dronectl push` exited 0.
	Committed int `json:"committed"`
	Aborted   int `json:"aborted"`  // stopped before the cut-over; the owner flew on
	Reverted  int `json:"reverted"` // taken over, then given back
	Failed    int `json:"failed"`   // any other end: refused, failed, timed out
	// Retries are safe aborts the agent retried itself (report.PhaseRetry):
	// an update that commits on a retry is committed.
	Retries        int     `json:"retries"`
	Takebacks      int     `json:"takebacks"`
	FalseTakebacks int     `json:"false_takebacks"`
	DoubleDrive    int     `json:"double_drive"`
	TickMs         float64 `json:"tick_ms"`
	// MaxGapMs is the longest motor gap within cutoverWindow of any cut-over;
	// SteadyMaxGapMs the longest in the second before any command.
	MaxGapMs       float64 `json:"max_gap_ms"`
	SteadyMaxGapMs float64 `json:"steady_max_gap_ms"`
	// MaxGapAtMs is where MaxGapMs began, from its update's cut-over
	// (negative: before it), which tells what the flight was waiting on:
	// about -500..-350 ms is the candidate's container starting, 0 the
	// cut-over itself, after it probation.
	MaxGapAtMs float64 `json:"max_gap_at_ms"`
	// CutoverGapMaxMs is the longest from the old owner's last motor
	// update to the new owner's first: the hand-over's own cost, a tick
	// plus what it adds.
	CutoverGapMaxMs float64 `json:"cutover_gap_max_ms"`
	// The machine's own stalls (SoakConfig.Probe): how late a do-nothing
	// thread under SCHED_FIFO 99 on any CPU woke, at worst, in the windows
	// around the cut-overs, in the seconds before the commands, and in the
	// window of MaxGapMs. A window gap the machine matched is the kernel's or the
	// hypervisor's, not the flight's.
	MachineMaxMs       float64 `json:"machine_max_ms"`
	MachineSteadyMaxMs float64 `json:"machine_steady_max_ms"`
	MachineAtMaxGapMs  float64 `json:"machine_at_max_gap_ms"`
	// The probe's longest stall that overlapped the gap MaxGapMs itself,
	// and SteadyMaxGapMs itself: when it is about as long as the gap, the
	// flight stood still because the machine did.
	MachineDuringMaxGapMs    float64 `json:"machine_during_max_gap_ms"`
	MachineDuringSteadyMaxMs float64 `json:"machine_during_steady_max_ms"`
	// CmdToControl is from `dronectl push` starting to the new owner's
	// first motor write, over the committed updates (the images are
	// present: v1 and v2 were each pulled once before the count starts).
	CmdToControlP50Ms float64 `json:"cmd_to_control_p50_ms"`
	CmdToControlMaxMs float64 `json:"cmd_to_control_max_ms"`
	Crashed           bool    `json:"crashed"`
}

// Soak runs cfg.Updates signed updates through the product (dronectl,
// MQTT, drone-agent, containerd, the registry) while the referee judges
// every motor write: how many commit, and what the flight saw. An update
// that does not commit is counted, not fatal; the next one is tried from
// whoever owns the drone then.
func Soak(ctx context.Context, cfg SoakConfig, logs io.Writer) (SoakResult, error) {
	cfg.RateHz, cfg.Updates = cmp.Or(cfg.RateHz, 400), cmp.Or(cfg.Updates, 10)
	res := SoakResult{RateHz: cfg.RateHz, Load: "quiet", TickMs: 1000 / float64(cfg.RateHz), RealTime: !cfg.Ordinary}
	if cfg.Hogs > 0 {
		res.Load = "hog:" + strconv.Itoa(cfg.Hogs)
	}
	sr, err := startSoak(ctx, cfg, logs)
	if err != nil {
		return res, err
	}
	defer sr.close()
	stop, err := Hog(cfg.Hogs)
	if err != nil {
		return res, err
	}
	defer stop()
	var ctc []float64
	for i := range cfg.Updates {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("rig: soak stopped after %d updates: %w", i, err)
		}
		u, err := sr.update(ctx, i)
		if err != nil {
			return res, err
		}
		res.add(u)
		if u.outcome == report.OutcomeCommitted {
			ctc = append(ctc, u.cmdToControlMs)
		}
	}
	res.Updates = cfg.Updates
	if len(ctc) > 0 {
		slices.Sort(ctc)
		res.CmdToControlP50Ms, res.CmdToControlMaxMs = round3(ctc[(len(ctc)-1)/2]), round3(ctc[len(ctc)-1])
	}
	return res, nil
}

// soakUpdate is one update of a soak.
type soakUpdate struct {
	outcome                 string // committed, aborted, reverted or failed
	retries                 int
	cmdToControlMs          float64
	windowMaxGap, steadyGap float64
	windowMaxGapAt          float64 // ms from the cut-over
	cutGap                  float64
	machine, machineSteady  float64        // the latency probe's worst in the window, and in the second before
	during, duringSteady    float64        // its longest stall overlapping the window's worst gap, and the second before's
	window                  referee.Report // from the end of the previous update to the end of this one
}

func (r *SoakResult) add(u soakUpdate) {
	switch u.outcome {
	case report.OutcomeCommitted:
		r.Committed++
	case report.OutcomeAborted:
		r.Aborted++
	case report.OutcomeReverted:
		r.Reverted++
	default:
		r.Failed++
	}
	r.Retries += u.retries
	r.Takebacks += u.window.Takebacks
	r.FalseTakebacks += u.window.FalseTakebacks
	r.DoubleDrive += u.window.DoubleDrive
	r.Crashed = r.Crashed || u.window.Crashed
	if g := round3(u.windowMaxGap); g > r.MaxGapMs {
		r.MaxGapMs, r.MaxGapAtMs, r.MachineAtMaxGapMs = g, round3(u.windowMaxGapAt), round3(u.machine)
		r.MachineDuringMaxGapMs = round3(u.during)
	}
	if g := round3(u.steadyGap); g > r.SteadyMaxGapMs {
		r.SteadyMaxGapMs, r.MachineDuringSteadyMaxMs = g, round3(u.duringSteady)
	}
	r.MachineMaxMs = max(r.MachineMaxMs, round3(u.machine))
	r.MachineSteadyMaxMs = max(r.MachineSteadyMaxMs, round3(u.machineSteady))
	r.CutoverGapMaxMs = max(r.CutoverGapMaxMs, round3(u.cutGap))
}

// soakRun is a soak's stack with v1 and v2 each flown once.
type soakRun struct {
	cfg   SoakConfig
	probe *LatencyProbe // nil without SoakConfig.Probe
	s     *Stack
	g     *Ground
	logs  io.Writer
	owner string // the version flying
	since int64  // end of the previous update's window
}

func startSoak(ctx context.Context, cfg SoakConfig, logs io.Writer) (sr *soakRun, err error) {
	sc := cfg.Stack
	rate := strconv.Itoa(cfg.RateHz)
	sc.SimEnv = append([]string{"SIM_GUST_N=1", "SIM_GUST_NM=0.01", "SIM_NOISE=1"}, sc.SimEnv...)
	sc.SimEnv = append(sc.SimEnv, "SIM_TICK_HZ="+rate)
	sc.AppEnv = append(append([]string{"FLIGHT_PATTERN=hover"}, sc.AppEnv...), "FLIGHT_RATE_HZ="+rate)
	if !cfg.Ordinary {
		sc.SimEnv = append(sc.SimEnv, RealTimeEnv.Sim...)
		sc.AppEnv = append(sc.AppEnv, RealTimeEnv.App...)
		sc.AgentEnv = append(sc.AgentEnv, RealTimeEnv.Agent...)
	}
	sc.Logs = logs
	sr = &soakRun{cfg: cfg, logs: logs}
	if sr.s, err = StartStack(ctx, sc); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sr.close()
		}
	}()
	if sr.g, err = WatchDrone(ctx, sr.s.BrokerURL, sr.s.Drone); err != nil {
		return sr, err
	}
	if err := sr.dronectl(ctx, "soak-deploy", "v1"); err != nil {
		return sr, fmt.Errorf("rig: soak: deploy v1: %w", err)
	}
	if _, err := sr.s.Sim.WaitHover(ctx, 60*time.Second); err != nil {
		return sr, err
	}
	// Pull v2 and come back to v1, so every measured update finds its
	// image present, as the command-to-control goal assumes.
	for _, v := range []string{"v2", "v1"} {
		if err := sr.dronectl(ctx, "soak-warm-"+v, v); err != nil {
			return sr, fmt.Errorf("rig: soak: first update to %s: %w", v, err)
		}
	}
	if len(cfg.Probe) > 0 {
		if sr.probe, err = StartLatencyProbe(cfg.Probe); err != nil {
			return sr, err
		}
	}
	sr.owner, sr.since = "v1", mono.Now()
	return sr, nil
}

func (sr *soakRun) close() {
	if sr.probe != nil {
		sr.probe.Stop()
	}
	if sr.g != nil {
		sr.g.Close()
	}
	if sr.s != nil {
		sr.s.Close()
	}
}

// dronectl runs `dronectl push -id id flight:<version>`; nil when it exits 0.
func (sr *soakRun) dronectl(ctx context.Context, id, version string) error {
	cmd := exec.CommandContext(ctx, sr.cfg.Dronectl, "push", "-id", id, "-timeout", "3m", "flight:"+version)
	cmd.Env = append(os.Environ(), sr.s.DronectlEnv()...)
	cmd.Stdout, cmd.Stderr = sr.logs, sr.logs
	return cmd.Run()
}

// update pushes the version not flying and measures it.
func (sr *soakRun) update(ctx context.Context, i int) (soakUpdate, error) {
	target := map[string]string{"v1": "v2", "v2": "v1"}[sr.owner]
	id := fmt.Sprintf("soak-%d-%d", sr.cfg.RateHz, i)
	sent := mono.Now()
	err := sr.dronectl(ctx, id, target)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return soakUpdate{}, fmt.Errorf("rig: soak: dronectl: %w", err)
	}
	end := mono.Now()
	evs := sr.g.Events(id)
	u := soakUpdate{outcome: outcomeOf(evs, err == nil)}
	for _, e := range evs {
		if e.Phase == report.PhaseRetry {
			u.retries++
		}
	}
	fmt.Fprintf(sr.logs, "skyswap-soak: update %d to %s: %s (%d retries)%s\n", i, target, u.outcome, u.retries, reasonOf(evs))
	if u.outcome == report.OutcomeCommitted {
		sr.owner = target
		if len(evs) == 0 {
			return u, fmt.Errorf("rig: soak: update %s committed but the ground saw none of its events", id)
		}
		if err := sr.measure(ctx, &u, evs[len(evs)-1].To, sent, end); err != nil {
			return u, err
		}
	} else {
		sr.logInstances(evs)
	}
	time.Sleep(time.Second) // the old owner is gone; steady again before the next
	var rerr error
	u.window, rerr = sr.s.Sim.Report(ctx, sr.since, mono.Now())
	sr.since = mono.Now()
	return u, rerr
}

// logInstances copies the log tails of the instances of an update that
// did not commit into the process log: their status lines (ticks missed,
// the longest tick) say what the new owner's loop saw.
func (sr *soakRun) logInstances(evs []report.Event) {
	if len(evs) == 0 {
		return
	}
	e := evs[len(evs)-1]
	for _, id := range []string{e.From, e.To} {
		if id != "" {
			fmt.Fprintf(sr.logs, "skyswap-soak: %s's log, its end:\n%s\n", id, sr.s.AppLogTail(id, 6000))
		}
	}
}

// measure fills in the motor gaps around the cut-over to owner and the
// command-to-control time.
func (sr *soakRun) measure(ctx context.Context, u *soakUpdate, owner string, sent, end int64) error {
	c, err := sr.s.MeasureCutover(ctx, owner, sent, end)
	if err != nil {
		return err
	}
	u.cmdToControlMs = float64(c.At-sent) / 1e6
	u.windowMaxGap, u.steadyGap, u.cutGap = c.Window.MaxGapMs, c.Steady.MaxGapMs, c.GapMs
	u.windowMaxGapAt = c.MaxGapAtMs()
	machine := ""
	if sr.probe != nil {
		u.machine = sr.probe.MaxMs(windowAround(c.At))
		u.machineSteady = sr.probe.MaxMs(steadyBefore(sent))
		u.during, u.duringSteady = sr.probe.DuringMs(maxGapSpan(c.Window)), sr.probe.DuringMs(maxGapSpan(c.Steady))
		machine = fmt.Sprintf("; the machine's own stalls: %.2f ms in the window (%.2f ms during its worst gap), %.2f ms the second before (%.2f ms during its worst gap)",
			u.machine, u.during, u.machineSteady, u.duringSteady)
	}
	fmt.Fprintf(sr.logs, "skyswap-soak: %s%s\n", c, machine)
	return nil
}

// Cutover is how a hand-over looked to the referee.
type Cutover struct {
	At     int64          // the new owner's first motor update, CLOCK_MONOTONIC ns
	GapMs  float64        // from the old owner's last motor update to it
	Window referee.Report // cutoverWindow either side of At
	Steady referee.Report // the second before the command
}

func (c Cutover) String() string {
	return fmt.Sprintf("cut-over gap %.2f ms; ±%v window max %.2f ms at %+.0f ms (p99 %.2f), the second before %.2f ms (p99 %.2f)",
		c.GapMs, cutoverWindow, c.Window.MaxGapMs, c.MaxGapAtMs(), c.Window.P99GapMs, c.Steady.MaxGapMs, c.Steady.P99GapMs)
}

// MaxGapAtMs is where the window's longest gap began, in ms from the
// cut-over (negative: before it).
func (c Cutover) MaxGapAtMs() float64 { return float64(c.Window.MaxGapAt-c.At) / 1e6 }

// cutoverWindow is how far either side of a cut-over its window reaches.
const cutoverWindow = 500 * time.Millisecond

// windowAround is the window judged around a cut-over at at, and
// steadyBefore the steady second before a command sent at sent
// (CLOCK_MONOTONIC ns, from and to).
func windowAround(at int64) (int64, int64) {
	return at - int64(cutoverWindow), at + int64(cutoverWindow)
}
func steadyBefore(sent int64) (int64, int64) { return sent - int64(time.Second), sent }

// maxGapSpan is when r's longest motor gap began and ended.
func maxGapSpan(r referee.Report) (int64, int64) {
	return r.MaxGapAt, r.MaxGapAt + int64(r.MaxGapMs*1e6)
}

// MeasureCutover judges the cut-over to owner of an update whose command
// went out at sent and which ended at end (CLOCK_MONOTONIC ns): the gap it
// made, and the motor gaps around it against the second before.
func (s *Stack) MeasureCutover(ctx context.Context, owner string, sent, end int64) (Cutover, error) {
	var c Cutover
	var err error
	if c.At, c.GapMs, err = s.FirstWrite(ctx, owner, sent, end); err != nil {
		return c, err
	}
	from, to := windowAround(c.At)
	if c.Window, err = s.Sim.Report(ctx, from, to); err != nil {
		return c, err
	}
	from, to = steadyBefore(sent)
	c.Steady, err = s.Sim.Report(ctx, from, to)
	return c, err
}

// outcomeOf is an update's outcome from its events: committed only when
// dronectl said so (exit 0).
func outcomeOf(evs []report.Event, ok bool) string {
	if ok {
		return report.OutcomeCommitted
	}
	for _, e := range slices.Backward(evs) {
		if e.Phase == report.PhaseResult && (e.Outcome == report.OutcomeAborted || e.Outcome == report.OutcomeReverted) {
			return e.Outcome
		}
	}
	return "failed"
}

// reasonOf is the agent's reason for a final event with an error.
func reasonOf(evs []report.Event) string {
	if len(evs) == 0 {
		return ": no events"
	}
	if e := evs[len(evs)-1]; e.Error != "" {
		return ": " + e.Error
	}
	return ""
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
