// Command drone-swarm is a test tool, not a drone: it runs many simulated
// drones' MQTT side in one process (rig/swarm) to prove the ground and
// the broker at fleet scale, each drone its own MQTT client and identity
// on the real agent code, with a simulated runtime instead of containerd
// and a flight app. The real agent (drone-agent) is the product path.
//
//	drone-swarm -n 1000 -broker tcp://127.0.0.1:1883,tcp://127.0.0.1:1884 \
//	    -trust KEYID=ground.pub -image 127.0.0.1:5000/flight:v1@sha256:... \
//	    -labels site=field-a -phase 200ms -fail-rate 0.05 -fail-image flight:v3
//
// It prints JSON lines on stdout: {"swarm":"ready",...} once every drone
// is online, {"swarm":"stats",...} every -stats and when SIGINT or SIGTERM
// stops it (commands received, received again, sent twice), and its
// drones' warnings. Exit status 2 on bad flags, 1 if the drones cannot
// start.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/rig/swarm"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg swarm.Config
	var trust, labels string
	var stats time.Duration
	fs := flag.NewFlagSet("drone-swarm", flag.ContinueOnError)
	fs.IntVar(&cfg.N, "n", 100, "how many drones")
	fs.StringVar(&cfg.Broker, "broker", os.Getenv("DRONECTL_BROKER"), "MQTT broker URL, or a cluster's nodes comma-separated ($DRONECTL_BROKER)")
	fs.StringVar(&cfg.Prefix, "prefix", "sim-", "drone ids are PREFIX0001, PREFIX0002...")
	fs.StringVar(&cfg.Dir, "dir", "", "the drones' journals and replay lists (default: a new temporary directory)")
	fs.StringVar(&trust, "trust", "", "ground keys the drones trust, KEYID=PATH.pub,... as AGENT_TRUSTED_KEYS (required)")
	fs.StringVar(&labels, "labels", "", "every drone's labels, key=value,... as AGENT_LABELS")
	fs.StringVar(&cfg.Image, "image", "", "the release (pinned by digest) every drone flies from the start; default none")
	fs.StringVar(&cfg.App, "app", "", "the app (default flight)")
	fs.DurationVar(&cfg.Sim.Pull, "pull", 200*time.Millisecond, "how long a pull takes")
	fs.DurationVar(&cfg.Sim.Phase, "phase", 200*time.Millisecond, "how long each hand-over phase takes")
	fs.Float64Var(&cfg.Sim.FailRate, "fail-rate", 0, "share of updates that fail (half abort, half revert), 0 to 1")
	fs.StringVar(&cfg.Sim.FailImage, "fail-image", "", "only images whose reference contains this fail (default any)")
	fs.Uint64Var(&cfg.Sim.Seed, "seed", 0, "varies which drones fail")
	fs.IntVar(&cfg.Connect, "connect", 32, "drones connecting at once")
	fs.DurationVar(&stats, "stats", 0, "print stats this often (default only at the end)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	var err error
	if cfg.Keys, err = command.LoadPublicKeys(trust); err != nil {
		fmt.Fprintln(os.Stderr, "drone-swarm: -trust:", err)
		return 2
	}
	if cfg.Labels, err = report.ParseLabels(labels); err != nil {
		fmt.Fprintln(os.Stderr, "drone-swarm: -labels:", err)
		return 2
	}
	if cfg.Broker == "" || cfg.N <= 0 {
		fmt.Fprintln(os.Stderr, "drone-swarm: give -broker and -n")
		return 2
	}
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "drone-swarm-"); err != nil {
			fmt.Fprintln(os.Stderr, "drone-swarm:", err)
			return 1
		}
		defer os.RemoveAll(cfg.Dir)
	}
	cfg.Log = slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	s, err := swarm.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drone-swarm:", err)
		return 1
	}
	line(struct {
		Swarm  string  `json:"swarm"`
		Drones int     `json:"drones"`
		StartS float64 `json:"start_s"`
	}{"ready", cfg.N, time.Since(began).Seconds()})
	var tick <-chan time.Time
	if stats > 0 {
		t := time.NewTicker(stats)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			line(statsLine(s))
		case <-ctx.Done():
			line(statsLine(s))
			s.Close()
			return 0
		}
	}
}

// statsLine is {"swarm":"stats",...swarm.Stats}.
func statsLine(s *swarm.Swarm) any {
	return struct {
		Swarm string `json:"swarm"`
		swarm.Stats
	}{"stats", s.Stats()}
}

func line(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}
