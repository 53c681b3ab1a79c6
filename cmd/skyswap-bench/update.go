package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/rig"
)

// updateLine is the update benchmark: the product path, fields in print
// order.
type updateLine struct {
	Bench   string `json:"bench"`
	Updates int    `json:"updates"` // committed v1 <-> v2 updates measured
	Retries int    `json:"retries"` // safe aborts the agent retried itself (report.PhaseRetry events)
	// CmdToControlMs is from the ground publishing the signed command to
	// the new owner's first motor write: the max over the updates, and the
	// first one's (the only one that pulls).
	CmdToControlMs      float64 `json:"cmd_to_control_ms"`
	FirstCmdToControlMs float64 `json:"first_cmd_to_control_ms"`
	MaxGapMs            float64 `json:"max_gap_ms"`        // longest motor gap within ±500 ms of each cut-over
	CutoverGapMs        float64 `json:"cutover_gap_ms"`    // longest old owner's last to new owner's first motor update
	SteadyMaxGapMs      float64 `json:"steady_max_gap_ms"` // same, in the second before each command
	DoubleDrive         int     `json:"double_drive"`
	BytesPulled         int64   `json:"bytes_pulled"`        // v2's pull with v1 present, as the agent counted
	RegistryBlobBytes   int64   `json:"registry_blob_bytes"` // the same, as the registry served it
	ChangedLayerBytes   int64   `json:"changed_layer_bytes"`
	AgentRSSMB          float64 `json:"agent_rss_mb"`   // drone-agent's peak resident set (VmHWM)
	AgentArm64MB        float64 `json:"agent_arm64_mb"` // the stripped linux/arm64 drone-agent binary
	Crashed             bool    `json:"crashed"`
}

// benchUpdates runs the product path: drone-agent deploys flight v1 from a
// loopback registry through containerd, then n updates alternate v2 and v1
// through signed MQTT commands, measured by the referee and the registry.
func benchUpdates(ctx context.Context, dir string, n int, logs io.Writer) (updateLine, error) {
	line := updateLine{Bench: "update"}
	if os.Geteuid() != 0 {
		return line, errors.New("the update bench runs containers: run make bench as root")
	}
	arm, err := os.Stat(filepath.Join(dir, "linux-arm64", "drone-agent"))
	if err != nil {
		return line, fmt.Errorf("%w: make bench builds it (make cross)", err)
	}
	line.AgentArm64MB = r3(float64(arm.Size()) / (1 << 20))
	s, refs, cleanup, err := startUpdateStack(ctx, dir, logs)
	if err != nil {
		return line, err
	}
	defer cleanup()
	diff, err := build.LayerDiff(s.Indexes["v1"], s.Indexes["v2"], s.Platform)
	if err != nil {
		return line, err
	}
	line.ChangedLayerBytes = diff.AddedBytes()

	var sentMono int64
	cfg := push.Config{Broker: s.BrokerURL, Drone: s.Drone, Key: s.Key, Timeout: 3 * time.Minute,
		OnSent: func(_ command.Command, sent time.Time) { sentMono = mono.Now() - int64(time.Since(sent)) }}
	res, err := push.Run(ctx, cfg, push.Request{Kind: command.KindUpdate, Image: refs["v1"]})
	if err != nil {
		return line, fmt.Errorf("deploy v1: %w", err)
	}
	from := mono.Now()
	if _, err := s.Sim.WaitHover(ctx, 60*time.Second); err != nil {
		return line, err
	}
	time.Sleep(2 * time.Second)

	var ctc []float64
	for i := 0; len(ctc) < n; i++ {
		v := "v2"
		if len(ctc)%2 == 1 {
			v = "v1"
		}
		blobs0, err := s.RegistryBlobBytes(ctx)
		if err != nil {
			return line, err
		}
		res, err = push.Run(ctx, cfg, push.Request{Kind: command.KindUpdate, Image: refs[v]})
		line.Retries += retries(res)
		if err != nil {
			return line, fmt.Errorf("update to %s: %w", v, err)
		}
		c, err := s.MeasureCutover(ctx, res.Final.To, sentMono, mono.Now())
		if err != nil {
			return line, err
		}
		ctc = append(ctc, float64(c.At-sentMono)/1e6)
		fmt.Fprintf(logs, "skyswap-bench: update %d to %s: %s\n", len(ctc), v, c)
		line.add(c)
		if len(ctc) == 1 {
			if err := line.firstPull(ctx, s, blobs0, res); err != nil {
				return line, err
			}
		}
		time.Sleep(time.Second) // the retired instance is gone; steady again
	}
	line.Updates = len(ctc)
	line.FirstCmdToControlMs = r3(ctc[0])
	line.CmdToControlMs = r3(slices.Max(ctc))
	total, err := s.Sim.Report(ctx, from, 0)
	if err != nil {
		return line, err
	}
	line.Crashed = total.Crashed
	if line.AgentRSSMB, err = peakRSSMB(s.Agent.Pid()); err != nil {
		return line, err
	}
	return line, nil
}

// add takes in one update's cut-over.
func (l *updateLine) add(c rig.Cutover) {
	l.CutoverGapMs = max(l.CutoverGapMs, r3(c.GapMs))
	l.MaxGapMs = max(l.MaxGapMs, r3(c.Window.MaxGapMs))
	l.SteadyMaxGapMs = max(l.SteadyMaxGapMs, r3(c.Steady.MaxGapMs))
	l.DoubleDrive += c.Window.DoubleDrive
}

// firstPull records what v2's pull cost, v1 being present: as the
// registry served it since blobs0, and as the agent counted it.
func (l *updateLine) firstPull(ctx context.Context, s *rig.Stack, blobs0 int64, res push.Result) error {
	blobs1, err := s.RegistryBlobBytes(ctx)
	if err != nil {
		return err
	}
	l.RegistryBlobBytes = blobs1 - blobs0
	for _, e := range res.Events {
		if e.Phase == report.PhasePulled {
			l.BytesPulled = e.Bytes
		}
	}
	return nil
}

// peakRSSMB is a process's peak resident set size (VmHWM), MiB.
func peakRSSMB(pid int) (float64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM of %d: %w", pid, err)
			}
			return r3(kb / 1024), nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// retries counts the agent's own retries of safe aborts in res.
func retries(res push.Result) int {
	n := 0
	for _, e := range res.Events {
		if e.Phase == report.PhaseRetry {
			n++
		}
	}
	return n
}

// startUpdateStack starts the product for the update bench and pins its
// releases' tags: version -> reference by digest.
func startUpdateStack(ctx context.Context, dir string, logs io.Writer) (*rig.Stack, map[string]string, func(), error) {
	work, err := os.MkdirTemp("", "skyswap-bench-")
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := rig.StartStack(ctx, rig.StackConfig{
		Dir: work, Sim: filepath.Join(dir, "drone-sim"), Agent: filepath.Join(dir, "drone-agent"),
		Ground: filepath.Join(dir, "dronectl"), Namespace: "skyswap-bench", SimEnv: []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"},
		AppEnv: []string{"FLIGHT_PATTERN=hover"}, Probation: 2 * time.Second, Logs: logs,
	})
	if err != nil {
		os.RemoveAll(work)
		return nil, nil, nil, err
	}
	cleanup := func() { s.Close(); os.RemoveAll(work) }
	refs := map[string]string{}
	for v, tag := range s.Refs {
		if refs[v], err = push.Resolve(ctx, tag, "", true); err != nil {
			cleanup()
			return nil, nil, nil, err
		}
	}
	return s, refs, cleanup, nil
}
