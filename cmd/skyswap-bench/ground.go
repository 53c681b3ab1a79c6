package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skyswap/skyswap/controller/ground/groundtest"
	"github.com/skyswap/skyswap/rig"
)

// groundLine is the ground station benchmark, fields in print order.
type groundLine struct {
	Bench  string `json:"bench"`
	Drones int    `json:"drones"`
	// TelemetryToDOMP99Ms is from a telemetry message's publication on
	// MQTT to the page's DOM showing it (its drone's row takes its tick),
	// p99 over every message the page showed.
	TelemetryToDOMP99Ms float64 `json:"telemetry_to_dom_p99_ms"`
	GroundRSSMB         float64 `json:"ground_rss_mb"`  // dronectl ground's peak resident set (VmHWM)
	GroundCPUPct        float64 `json:"ground_cpu_pct"` // its CPU time over the replay, % of one core
	TelemetryToDOMP50Ms float64 `json:"telemetry_to_dom_p50_ms"`
	TelemetryToDOMMaxMs float64 `json:"telemetry_to_dom_max_ms"`
	Seconds             float64 `json:"seconds"`     // of replay
	Messages            int     `json:"messages"`    // telemetry messages published after the warm-up
	Shown               int     `json:"shown"`       // of them, shown by the page
	Dropped             uint64  `json:"dropped"`     // page messages the ground dropped for the browser
	PageErrors          int     `json:"page_errors"` // console errors and exceptions of the page
}

// Ground benchmark settings.
const (
	groundDrones  = 10
	groundReplay  = 30 * time.Second
	groundWarmUp  = 2 * time.Second // the page makes its rows and plots
	userHZ        = 100             // /proc's clock ticks a second (USER_HZ) on Linux
	groundSettled = time.Second     // for the last messages to reach the page
)

// benchGround replays a recorded flight's telemetry under 10 drone ids
// over MQTT through dronectl ground (its embedded broker) into its page in
// headless Chromium, and measures each message from publication to the
// DOM, and the ground's memory and CPU.
func benchGround(ctx context.Context, dir string, logs io.Writer) (groundLine, error) {
	line := groundLine{Bench: "ground", Drones: groundDrones}
	work, err := os.MkdirTemp("", "skyswap-bench-ground-")
	if err != nil {
		return line, err
	}
	defer os.RemoveAll(work)
	g, err := rig.StartGround(ctx, rig.GroundConfig{Bin: filepath.Join(dir, "dronectl"), Dir: filepath.Join(work, "ground"), Logs: logs})
	if err != nil {
		return line, err
	}
	defer g.Stop()
	b, err := groundtest.NewBrowser(ctx, groundtest.BrowserConfig{Dir: filepath.Join(work, "browser")})
	if err != nil {
		return line, err
	}
	defer b.Close()
	if err := b.Open(g.URL); err != nil {
		return line, err
	}
	if err := b.Wait(`document.querySelector('#conn').dataset.state === 'live'`, 30*time.Second); err != nil {
		return line, err
	}
	if err := b.WatchTicks(); err != nil {
		return line, err
	}
	sent, err := replayFleet(ctx, g, &line)
	if err != nil {
		return line, err
	}
	time.Sleep(groundSettled)
	return line, measurePage(ctx, g, b, sent, &line)
}

// tickKey names one telemetry message.
type tickKey struct {
	drone string
	tick  int64
}

// replayFleet replays the flight under the bench's drones and returns when
// each message after the warm-up was published (Unix ms), with the
// ground's CPU over the replay in line.
func replayFleet(ctx context.Context, g *rig.GroundStation, line *groundLine) (map[tickKey]float64, error) {
	drones := make([]string, groundDrones)
	for i := range drones {
		drones[i] = fmt.Sprintf("d%02d", i+1)
	}
	var mu sync.Mutex
	sent := map[tickKey]float64{}
	start := time.Now()
	cpu0, err := cpuTicks(g.Pid())
	if err != nil {
		return nil, err
	}
	_, err = groundtest.Replay(ctx, groundtest.ReplayConfig{Broker: g.BrokerURL, Drones: drones, Duration: groundReplay,
		OnSent: func(drone string, tick int64, at time.Time) {
			if at.Sub(start) < groundWarmUp {
				return
			}
			mu.Lock()
			sent[tickKey{drone, tick}] = float64(at.UnixMicro()) / 1e3
			mu.Unlock()
		}})
	if err != nil {
		return nil, err
	}
	wall := time.Since(start)
	cpu1, err := cpuTicks(g.Pid())
	if err != nil {
		return nil, err
	}
	line.Seconds = r3(wall.Seconds())
	line.GroundCPUPct = r3(float64(cpu1-cpu0) / userHZ / wall.Seconds() * 100)
	line.Messages = len(sent)
	return sent, nil
}

// measurePage matches what the page showed with what was published.
func measurePage(ctx context.Context, g *rig.GroundStation, b *groundtest.Browser, sent map[tickKey]float64, line *groundLine) error {
	ticks, err := b.Ticks()
	if err != nil {
		return err
	}
	var delays []float64
	for _, t := range ticks {
		if at, ok := sent[tickKey{t.Drone, t.Tick}]; ok {
			delays = append(delays, t.AtMs-at)
		}
	}
	if len(delays) == 0 {
		return errors.New("ground: the page showed none of the telemetry published: see the process logs")
	}
	slices.Sort(delays)
	line.Shown = len(delays)
	line.TelemetryToDOMP50Ms = r3(delays[len(delays)/2])
	line.TelemetryToDOMP99Ms = r3(delays[min(len(delays)-1, len(delays)*99/100)])
	line.TelemetryToDOMMaxMs = r3(delays[len(delays)-1])
	line.PageErrors = len(b.Errors())
	st, err := g.Stats(ctx)
	if err != nil {
		return err
	}
	line.Dropped = st.Dropped
	line.GroundRSSMB, err = peakRSSMB(g.Pid())
	return err
}

// cpuTicks is a process's user and system CPU time, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return utime + stime, nil
}
