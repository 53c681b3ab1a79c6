package rig

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/hw/mono"
)

// SeriesConfig is a run of consecutive updates for the bench.
type SeriesConfig struct {
	Fleet    FleetConfig
	V2       string            // the other flight build; updates alternate v1 -> v2 -> v1 ...
	Strategy strategy.Strategy // "" = handoff
	N        int               // updates; 0 = 20
	// Probation per hand-over; 0 = coordinator.DefaultProbation.
	Probation time.Duration
	// Window is the length of each judged window; 0 = 250 ms. A hand-over
	// window starts 100 ms before the cut-over tick; a steady window ends 50
	// ms before the update starts.
	Window time.Duration
}

// SeriesResult is what the referee saw over the series.
type SeriesResult struct {
	Strategy       string  `json:"strategy"`
	N              int     `json:"handoffs"`
	MaxGapMs       float64 `json:"max_gap_ms"`        // worst gap in any hand-over window
	SteadyMaxGapMs float64 `json:"steady_max_gap_ms"` // worst gap in any steady window
	DoubleDrive    int     `json:"double_drive"`
	StaleRefused   int     `json:"stale_refused"`
	// AttRatio is the peak tilt in the hand-over windows over the steady
	// tilt p99 (the mean of the steady windows' p99).
	AttRatio float64 `json:"att_ratio"`
	// SteadyAttRatio is the same statistic over the steady windows: the
	// floor that gusts alone give a peak-over-p99 ratio in this many
	// windows.
	SteadyAttRatio    float64 `json:"steady_att_ratio"`
	CutoverToCommitMs float64 `json:"cutover_to_commit_ms"` // mean
	Crashed           bool    `json:"crashed"`
}

// Series flies cfg.N consecutive updates and judges them.
func Series(ctx context.Context, cfg SeriesConfig) (SeriesResult, error) {
	if cfg.N == 0 {
		cfg.N = 20
	}
	if cfg.Strategy == "" {
		cfg.Strategy = strategy.Handoff
	}
	if cfg.Window == 0 {
		cfg.Window = 250 * time.Millisecond
	}
	res := SeriesResult{Strategy: string(cfg.Strategy), N: cfg.N}
	if cfg.Strategy != strategy.Handoff {
		// An app with no state to hand over has no reason to land when
		// stopped: it exits and the chip holds its last outputs.
		cfg.Fleet.FlightEnv = append(cfg.Fleet.FlightEnv, "FLIGHT_ON_TERM=exit")
	}
	f, err := StartFleet(ctx, cfg.Fleet)
	if err != nil {
		return res, err
	}
	defer f.Close()
	start := mono.Now()
	time.Sleep(time.Second) // settle after take-off
	var peak, steadyPeak, steadyP99Sum, commitSum float64
	w := int64(cfg.Window)
	for i := 1; i <= cfg.N; i++ {
		bin, name := cfg.V2, fmt.Sprintf("v2-%d", i)
		if i%2 == 0 {
			bin, name = cfg.Fleet.Flight, fmt.Sprintf("v1-%d", i)
		}
		t0 := mono.Now()
		steady, err := f.Report(ctx, t0-int64(50*time.Millisecond)-w, t0-int64(50*time.Millisecond))
		if err != nil {
			return res, err
		}
		r, err := f.Update(ctx, coordinator.Plan{Strategy: cfg.Strategy, Candidate: name, Probation: cfg.Probation}, bin)
		if err != nil {
			return res, fmt.Errorf("update %d (%s): %w", i, cfg.Strategy, err)
		}
		// Let the window close before judging it.
		time.Sleep(max(0, time.Duration(r.CutoverNs+w-mono.Now())) + 50*time.Millisecond)
		win, err := f.Report(ctx, r.CutoverNs-int64(100*time.Millisecond), r.CutoverNs-int64(100*time.Millisecond)+w)
		if err != nil {
			return res, err
		}
		res.MaxGapMs = math.Max(res.MaxGapMs, win.MaxGapMs)
		res.SteadyMaxGapMs = math.Max(res.SteadyMaxGapMs, steady.MaxGapMs)
		peak = math.Max(peak, win.AttErrMaxDeg)
		steadyP99Sum += steady.AttErrP99Deg
		steadyPeak = math.Max(steadyPeak, steady.AttErrMaxDeg)
		commitSum += r.ToCommitMs
		if win.Crashed {
			break
		}
		time.Sleep(400 * time.Millisecond) // room for the next steady window
	}
	all, err := f.Report(ctx, start, 0)
	if err != nil {
		return res, err
	}
	res.DoubleDrive, res.StaleRefused, res.Crashed = all.DoubleDrive, all.StaleRefused, all.Crashed
	if steadyP99Sum > 0 {
		res.AttRatio = peak / (steadyP99Sum / float64(cfg.N))
		res.SteadyAttRatio = steadyPeak / (steadyP99Sum / float64(cfg.N))
	}
	res.CutoverToCommitMs = commitSum / float64(cfg.N)
	return res, nil
}
