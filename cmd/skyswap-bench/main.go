// Command skyswap-bench measures flight continuity with the referee and
// prints one JSON object per benchmark on stdout. The binaries are taken
// from the directory this program is in (make bench builds them into bin/).
//
//	hover: 20 s of hover in gusts with sensor noise after take-off.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/skyswap/skyswap/rig"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "skyswap-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Dir(self)
	bins := rig.Binaries{Sim: filepath.Join(dir, "drone-sim"), Flight: filepath.Join(dir, "flight")}
	ctx := context.Background()

	const seconds = 20
	res, err := rig.FlyHover(ctx, bins, rig.HoverOpts{
		Seconds:   seconds,
		SimEnv:    []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"},
		FlightEnv: []string{"FLIGHT_PATTERN=hover"},
	})
	if err != nil {
		return fmt.Errorf("hover: %w", err)
	}
	w := res.Window
	return emit(hoverLine{
		Bench: "hover", RateHz: 400, Seconds: r3(w.Seconds), Updates: w.Updates,
		SteadyMaxGapMs: r3(w.MaxGapMs), P99GapMs: r3(w.P99GapMs), MeanGapMs: r3(w.MeanGapMs),
		AttErrP99Deg: r3(w.AttErrP99Deg), AltErrP99M: r3(w.AltErrP99M),
		TakeoffS: r3(res.TakeoffS), Crashed: res.Flight.Crashed,
	})
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
