package rig

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/referee"
)

// HoverOpts configures FlyHover. The zero value of each field means the
// default noted beside it.
type HoverOpts struct {
	// Seconds of flight to judge once the drone reaches hover; 0 = until
	// ctx is done.
	Seconds float64
	SimEnv  []string // extra SIM_* settings (gusts, noise)
	// FlightEnv are extra FLIGHT_* settings for v1.
	FlightEnv []string
	// Dir holds the simulator's socket; "" = a new temporary directory.
	Dir string
	// Logs receives both processes' JSON logs; nil = discarded.
	Logs io.Writer
	// Every, if set, is called about once a second with the ground truth.
	Every func(sim.Truth)
}

// HoverResult is what FlyHover measured.
type HoverResult struct {
	TakeoffS float64        // from start to first reaching the reference altitude
	Window   referee.Report // the referee over the judged window
	Flight   referee.Report // the referee over the whole flight, take-off to landing
	Final    sim.Truth      // ground truth after landing
	LandErr  error          // the flight app's exit after SIGTERM (nil = landed cleanly)
}

// FlyHover starts drone-sim and flight v1, waits for the hover, flies for
// the judged window, then lands v1 with SIGTERM and stops the simulator.
func FlyHover(ctx context.Context, bins Binaries, o HoverOpts) (HoverResult, error) {
	var res HoverResult
	dir := o.Dir
	if dir == "" {
		d, cleanup, err := tempDir()
		if err != nil {
			return res, err
		}
		defer cleanup()
		dir = d
	}
	s, err := StartSim(ctx, bins.Sim, dir, o.SimEnv, o.Logs)
	if err != nil {
		return res, err
	}
	defer s.Stop()
	start := mono.Now()
	env := append([]string{"FLIGHT_BUS=sim:" + s.Socket, "FLIGHT_INSTANCE=v1"}, o.FlightEnv...)
	v1, err := Start(bins.Flight, env, o.Logs)
	if err != nil {
		return res, err
	}
	defer v1.Kill()

	hover, err := s.WaitHover(ctx, 30*time.Second)
	if err != nil {
		return res, err
	}
	res.TakeoffS = float64(hover-start) / 1e9

	var deadline <-chan time.Time
	if o.Seconds > 0 {
		deadline = time.After(time.Duration(o.Seconds * float64(time.Second)))
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
fly:
	for {
		select {
		case <-ctx.Done():
			break fly
		case <-deadline:
			break fly
		case <-v1.Done():
			return res, fmt.Errorf("rig: flight v1 exited in flight: %v", v1.Err())
		case <-tick.C:
			if o.Every != nil {
				if t, err := s.Truth(ctx); err == nil {
					o.Every(t)
				}
			}
		}
	}
	end := mono.Now()
	// The stop request may have come as ctx: read the referee without it.
	bg := context.WithoutCancel(ctx)
	if res.Window, err = s.Report(bg, hover, end); err != nil {
		return res, err
	}
	res.LandErr = v1.Stop(30 * time.Second)
	time.Sleep(300 * time.Millisecond) // let the motors spin down
	if res.Flight, err = s.Report(bg, start, 0); err != nil {
		return res, err
	}
	res.Final, err = s.Truth(bg)
	return res, err
}

func tempDir() (string, func(), error) {
	d, err := os.MkdirTemp("", "skyswap-rig-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}
