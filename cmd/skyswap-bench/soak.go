package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/skyswap/skyswap/rig"
)

// soakSettings are the soak's settings from the environment:
// SOAK_UPDATES (per case; make bench: 4, make soak: 50), SOAK_RATES
// (Hz, comma separated; 250,400,1000), SOAK_LOADS (quiet,hog) and SOAK_RT
// (1: the flight loop and the simulator under SCHED_FIFO, as on a drone;
// 0: ordinary scheduling).
type soakSettings struct {
	updates  int
	rates    []int
	loads    []string
	ordinary bool
}

func loadSoakSettings(getenv func(string) string) (soakSettings, error) {
	s := soakSettings{updates: 4, rates: []int{250, 400, 1000}, loads: []string{"quiet", "hog"}}
	if v := getenv("SOAK_UPDATES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return s, fmt.Errorf("SOAK_UPDATES=%q: want a count of updates per case, 1..10000", v)
		}
		s.updates = n
	}
	if v := getenv("SOAK_RATES"); v != "" {
		s.rates = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 50 || n > 2000 {
				return s, fmt.Errorf("SOAK_RATES=%q: %q is not a loop rate in Hz, 50..2000", v, f)
			}
			s.rates = append(s.rates, n)
		}
	}
	if v := getenv("SOAK_LOADS"); v != "" {
		s.loads = nil
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "quiet" && f != "hog" {
				return s, fmt.Errorf("SOAK_LOADS=%q: %q is not a load: use quiet or hog", v, f)
			}
			s.loads = append(s.loads, strings.TrimSpace(f))
		}
	}
	switch v := getenv("SOAK_RT"); v {
	case "", "1":
	case "0":
		s.ordinary = true
	default:
		return s, fmt.Errorf("SOAK_RT=%q: want 1 (SCHED_FIFO, as on a drone) or 0 (ordinary scheduling)", v)
	}
	return s, nil
}

// latencyProbeArg runs this binary as the soak's latency probe.
const latencyProbeArg = "latency-probe"

// soakLine is the soak benchmark's line for one case.
type soakLine struct {
	Bench string `json:"bench"`
	rig.SoakResult
}

// benchSoak runs the soak's cases one after another, each on a new stack,
// and prints a line per case.
func benchSoak(ctx context.Context, dir string, logs io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("the soak runs containers: run it as root")
	}
	set, err := loadSoakSettings(os.Getenv)
	if err != nil {
		return err
	}
	for _, load := range set.loads {
		for _, rate := range set.rates {
			work, err := os.MkdirTemp("", "skyswap-soak-")
			if err != nil {
				return err
			}
			cfg := rig.SoakConfig{
				Stack: rig.StackConfig{Dir: work, Sim: filepath.Join(dir, "drone-sim"), Agent: filepath.Join(dir, "drone-agent"),
					Ground: filepath.Join(dir, "dronectl"), Namespace: "skyswap-bench"},
				Dronectl: filepath.Join(dir, "dronectl"), RateHz: rate, Updates: set.updates, Ordinary: set.ordinary,
				Probe: []string{filepath.Join(dir, "skyswap-bench"), latencyProbeArg},
			}
			if load == "hog" {
				cfg.Hogs = runtime.NumCPU()
			}
			res, err := rig.Soak(ctx, cfg, logs)
			os.RemoveAll(work)
			if err != nil {
				return fmt.Errorf("%d Hz, %s: %w", rate, load, err)
			}
			if err := emit(soakLine{Bench: "soak", SoakResult: res}); err != nil {
				return err
			}
		}
	}
	return nil
}
