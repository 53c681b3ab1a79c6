// Command skyswap-demo flies the virtual drone on this machine: it starts
// drone-sim (gusts and sensor noise on) and flight v1 as processes, shows the
// drone live once a second, and after DEMO_SECONDS (default 20; 0 = until
// Ctrl-C) or on Ctrl-C lands it and prints the referee's figures as a final
// JSON line {"demo":"summary",...}. The binaries are taken from the
// directory this program is in (make demo builds them into bin/).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/rig"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("demo failed", "err", err)
		fmt.Fprintln(os.Stderr, "skyswap-demo:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	seconds := 20.0
	if v := os.Getenv("DEMO_SECONDS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("DEMO_SECONDS=%q: want a number of seconds (0 = until Ctrl-C)", v)
		}
		seconds = f
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Dir(self)
	bins := rig.Binaries{Sim: filepath.Join(dir, "drone-sim"), Flight: filepath.Join(dir, "flight")}
	for _, b := range []string{bins.Sim, bins.Flight} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run make demo (it builds bin/ first)", b)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logFile := filepath.Join(os.TempDir(), "skyswap-demo.log")
	logs, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer logs.Close()
	log.Info("demo starting: drone-sim with gusts, flight v1 cold start, take-off to 2 m",
		"seconds", seconds, "process_logs", logFile)
	res, err := rig.FlyHover(ctx, bins, rig.HoverOpts{
		Seconds: seconds,
		SimEnv:  []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"},
		Logs:    logs,
		Every: func(t sim.Truth) {
			log.Info("drone", "alt_m", round(t.Pos[2]), "roll_deg", round(t.RollDeg), "pitch_deg", round(t.PitchDeg),
				"yaw_deg", round(t.YawDeg), "motors", [4]float64{round(t.Motors[0]), round(t.Motors[1]), round(t.Motors[2]), round(t.Motors[3])},
				"airborne", t.Airborne, "epoch", t.Epoch)
		},
	})
	if err != nil {
		return fmt.Errorf("%w (process logs: %s)", err, logFile)
	}
	w := res.Window
	summary := summaryLine{
		Demo: "summary", TakeoffS: round(res.TakeoffS), HoverS: round(w.Seconds), MotorUpdates: w.Updates,
		SteadyMaxGapMs: round(w.MaxGapMs), P99GapMs: round(w.P99GapMs),
		AttErrP99Deg: round(w.AttErrP99Deg), AltErrP99M: round(w.AltErrP99M),
		DoubleDrive: w.DoubleDrive, StaleRefused: w.StaleRefused, Writers: w.Writers,
		Landed: res.LandErr == nil && !res.Final.Airborne, Crashed: res.Flight.Crashed,
	}
	b, _ := json.Marshal(summary)
	fmt.Println(string(b))
	if res.Flight.Crashed {
		return fmt.Errorf("the drone crashed (process logs: %s)", logFile)
	}
	return nil
}

// summaryLine is the demo's final line, fields in print order.
type summaryLine struct {
	Demo           string   `json:"demo"`
	TakeoffS       float64  `json:"takeoff_s"`
	HoverS         float64  `json:"hover_s"`
	MotorUpdates   int      `json:"motor_updates"`
	SteadyMaxGapMs float64  `json:"steady_max_gap_ms"`
	P99GapMs       float64  `json:"p99_gap_ms"`
	AttErrP99Deg   float64  `json:"att_err_p99_deg"`
	AltErrP99M     float64  `json:"alt_err_p99_m"`
	DoubleDrive    int      `json:"double_drive"`
	StaleRefused   int      `json:"stale_refused"`
	Writers        []string `json:"writers"`
	Landed         bool     `json:"landed"`
	Crashed        bool     `json:"crashed"`
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }
