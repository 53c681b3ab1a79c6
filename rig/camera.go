package rig

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/referee"
)

// CameraSeriesConfig is a run of camera hand-overs for the bench: v1 hands
// over to V2 (which configures the camera), then N hand-overs from one V2
// instance to the next.
type CameraSeriesConfig struct {
	Fleet FleetConfig
	V2    string // a flight build with the camera
	N     int    // v2 -> v2' hand-overs; 0 = 10
	// Window is how long before and after each cut-over is judged; 0 = 1 s.
	Window time.Duration
}

// CameraSeriesResult is what the referee saw of the camera.
type CameraSeriesResult struct {
	N int `json:"handoffs"`
	// FPS is new images per second delivered to the owner in steady
	// flight (the Lepton 2.5 makes 9); StreamFPS counts every video frame
	// delivered, repeats included (27).
	FPS       float64 `json:"fps"`
	StreamFPS float64 `json:"stream_fps"`
	// HandoffFrameGapMs is the longest time between two delivered frames
	// in any hand-over window; SteadyFrameGapMs the same in steady flight.
	HandoffFrameGapMs float64 `json:"handoff_frame_gap_ms"`
	SteadyFrameGapMs  float64 `json:"steady_frame_gap_ms"`
	// FramesLost counts the new images the camera made during the
	// hand-over windows that no reader got.
	FramesLost int `json:"frames_lost"`
	// ConfigWhileStreaming counts camera reconfigurations while it was
	// streaming (an Attach that reset it); 0 is right.
	ConfigWhileStreaming int  `json:"config_while_streaming"`
	DoubleDrive          int  `json:"double_drive"`
	Crashed              bool `json:"crashed"`
}

// CameraSeries flies cfg and judges the camera across the hand-overs.
func CameraSeries(ctx context.Context, cfg CameraSeriesConfig) (CameraSeriesResult, error) {
	if cfg.N == 0 {
		cfg.N = 10
	}
	if cfg.Window == 0 {
		cfg.Window = time.Second
	}
	res := CameraSeriesResult{N: cfg.N}
	f, err := StartFleet(ctx, cfg.Fleet)
	if err != nil {
		return res, err
	}
	defer f.Close()
	start := mono.Now()
	update := func(name string) (coordinator.Result, error) {
		return f.Update(ctx, coordinator.Plan{Candidate: name, Probation: time.Second}, cfg.V2)
	}
	if _, err := update("cam-0"); err != nil {
		return res, fmt.Errorf("v1 -> v2: %w", err)
	}
	time.Sleep(time.Second) // the camera configures and streams
	from := mono.Now()
	time.Sleep(3 * time.Second)
	steady, err := f.Sim.Camera(ctx, from, mono.Now())
	if err != nil {
		return res, err
	}
	frames, err := f.Sim.CameraFrames(ctx, from, mono.Now())
	if err != nil {
		return res, err
	}
	res.StreamFPS = float64(steady.Frames) / steady.Seconds
	res.FPS = float64(len(distinctImages(frames))) / steady.Seconds
	res.SteadyFrameGapMs = steady.MaxFrameGapMs
	w := int64(cfg.Window)
	for i := 1; i <= cfg.N; i++ {
		r, err := update(fmt.Sprintf("cam-%d", i))
		if err != nil {
			return res, fmt.Errorf("hand-over %d: %w", i, err)
		}
		time.Sleep(max(0, time.Duration(r.CutoverNs+w-mono.Now())) + 50*time.Millisecond)
		win, err := f.Sim.Camera(ctx, r.CutoverNs-w, r.CutoverNs+w)
		if err != nil {
			return res, err
		}
		frames, err := f.Sim.CameraFrames(ctx, r.CutoverNs-w, r.CutoverNs+w)
		if err != nil {
			return res, err
		}
		res.HandoffFrameGapMs = math.Max(res.HandoffFrameGapMs, win.MaxFrameGapMs)
		res.ConfigWhileStreaming += win.ConfigWhileStreaming
		res.FramesLost += lostImages(frames)
	}
	all, err := f.Report(ctx, start, 0)
	if err != nil {
		return res, err
	}
	res.DoubleDrive, res.Crashed = all.DoubleDrive, all.Crashed
	for _, v := range []*float64{&res.FPS, &res.StreamFPS, &res.HandoffFrameGapMs, &res.SteadyFrameGapMs} {
		*v = math.Round(*v*1000) / 1000
	}
	return res, nil
}

// distinctImages returns the distinct images among delivered frames, in order.
func distinctImages(frames []referee.CameraFrame) []uint32 {
	var out []uint32
	seen := map[uint32]bool{}
	for _, f := range frames {
		if !seen[f.Image] {
			seen[f.Image] = true
			out = append(out, f.Image)
		}
	}
	return out
}

// lostImages counts the images between the first and the last delivered
// one that nobody got (the camera makes a new image every third frame).
func lostImages(frames []referee.CameraFrame) int {
	ims := distinctImages(frames)
	if len(ims) < 2 {
		return 0
	}
	lo, hi := ims[0], ims[0]
	for _, im := range ims {
		lo, hi = min(lo, im), max(hi, im)
	}
	return int((hi-lo)/3) + 1 - len(ims)
}
