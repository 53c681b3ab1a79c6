package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/rig"
)

// runProcesses is the demo without containers or the agent (-processes):
// the on-board NATS server, drone-sim and flight v1 as processes, the
// coordinator in this process; v1 hands over to v2 after 6 s.
func runProcesses(ctx context.Context, log *slog.Logger, seconds float64, dir string) error {
	sim, v1, v2 := filepath.Join(dir, "drone-sim"), filepath.Join(dir, "flight"), filepath.Join(dir, "flight-v2")
	for _, b := range []string{sim, v1, v2} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run make demo (it builds bin/ first)", b)
		}
	}
	logFile := filepath.Join(os.TempDir(), "skyswap-demo.log")
	logs, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer logs.Close()
	log.Info("demo starting: on-board NATS, drone-sim with gusts, flight v1 cold start, take-off to 2 m",
		"seconds", seconds, "process_logs", logFile)
	start := mono.Now()
	f, err := rig.StartFleet(ctx, rig.FleetConfig{
		Sim: sim, Flight: v1, SimEnv: []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"},
		Logs: logs, Log: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		return fmt.Errorf("%w (process logs: %s)", err, logFile)
	}
	defer f.Close()
	onEvent := func(e handoff.Event) {
		log.Info("update", "phase", e.Phase, "from", e.From, "to", e.To, "epoch", e.Epoch, "tick", e.Tick, "err", e.Error)
	}
	hover := f.Hover
	log.Info("hovering", "takeoff_s", round(float64(hover-start)/1e9))

	show := func() {
		t, err := f.Sim.Truth(ctx)
		if err != nil {
			return
		}
		log.Info("drone", "owner", f.Owner(), "epoch", t.Epoch, "alt_m", round(t.Pos[2]), "roll_deg", round(t.RollDeg),
			"pitch_deg", round(t.PitchDeg), "yaw_deg", round(t.YawDeg),
			"motors", [4]float64{round(t.Motors[0]), round(t.Motors[1]), round(t.Motors[2]), round(t.Motors[3])})
	}
	var res *coordinator.Result
	var steady, window [2]int64
	fly(ctx, seconds, show, func() {
		steady = [2]int64{mono.Now() - int64(time.Second), mono.Now()}
		r, err := f.Update(ctx, coordinator.Plan{OnEvent: onEvent, Candidate: "v2-1"}, v2)
		res = &r
		if err != nil {
			log.Error("update did not commit", "outcome", r.Outcome, "reason", r.Reason)
		}
		window = [2]int64{r.CutoverNs - int64(500*time.Millisecond), r.CutoverNs + int64(500*time.Millisecond)}
	})
	end2 := mono.Now()
	bg := context.WithoutCancel(ctx)
	flight, err := f.Report(bg, hover, end2)
	if err != nil {
		return err
	}
	log.Info("landing", "owner", f.Owner())
	landErr := f.Land()
	time.Sleep(300 * time.Millisecond)
	final, err := f.Sim.Truth(bg)
	if err != nil {
		return err
	}
	total, err := f.Report(bg, start, 0)
	if err != nil {
		return err
	}

	s := processSummary{Demo: "summary", flightFigures: flightOf(float64(hover-start)/1e9, flight, total),
		Landed: landErr == nil && !final.Airborne, Crashed: total.Crashed}
	if res != nil {
		s.Update = handover(bg, f, *res, steady, window)
	}
	b, _ := json.Marshal(s)
	fmt.Println(string(b))
	if total.Crashed {
		return fmt.Errorf("the drone crashed (process logs: %s)", logFile)
	}
	return nil
}

// handover sums up the update res: its phases' times and the referee's
// figures over the cut-over window against the steady one.
func handover(ctx context.Context, f *rig.Fleet, res coordinator.Result, steady, window [2]int64) *handoverFigures {
	h := &handoverFigures{Outcome: res.Outcome, Strategy: res.Strategy, From: "v1-0", To: "v2-1",
		StartMs: round(res.StartMs), SyncMs: round(res.SyncMs), CutoverTick: res.CutoverTick,
		CutoverToCommitMs: round(res.ToCommitMs), Reason: res.Reason}
	if res.CutoverNs == 0 {
		return h
	}
	w, err := f.Report(ctx, window[0], window[1])
	if err != nil {
		return h
	}
	st, _ := f.Report(ctx, steady[0], steady[1])
	h.WindowMaxGapMs, h.SteadyMaxGapMs = round(w.MaxGapMs), round(st.MaxGapMs)
	h.WindowTiltMaxDeg, h.SteadyTiltP99Deg = round(w.AttErrMaxDeg), round(st.AttErrP99Deg)
	h.DoubleDrive = w.DoubleDrive
	return h
}

// processSummary is the demo's final line, fields in print order.
type processSummary struct {
	Demo string `json:"demo"`
	flightFigures
	Update  *handoverFigures `json:"update,omitempty"`
	Landed  bool             `json:"landed"`
	Crashed bool             `json:"crashed"`
}

// handoverFigures describe the v1 -> v2 hand-over: the phase timings and the
// referee over ±500 ms around the cut-over tick against the second before
// the update began.
type handoverFigures struct {
	Outcome           string  `json:"outcome"`
	Strategy          string  `json:"strategy"`
	From              string  `json:"from"`
	To                string  `json:"to"`
	StartMs           float64 `json:"start_ms"`
	SyncMs            float64 `json:"sync_ms"`
	CutoverTick       int64   `json:"cutover_tick"`
	CutoverToCommitMs float64 `json:"cutover_to_commit_ms"`
	WindowMaxGapMs    float64 `json:"window_max_gap_ms"`
	SteadyMaxGapMs    float64 `json:"steady_max_gap_ms"`
	WindowTiltMaxDeg  float64 `json:"window_tilt_max_deg"`
	SteadyTiltP99Deg  float64 `json:"steady_tilt_p99_deg"`
	DoubleDrive       int     `json:"double_drive"`
	Reason            string  `json:"reason,omitempty"`
}
