package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/rollout"
	"github.com/skyswap/skyswap/rig"
	"github.com/skyswap/skyswap/rig/swarm"
)

// rolloutLine is the fleet benchmark, fields in print order.
type rolloutLine struct {
	Bench   string  `json:"bench"`
	Drones  int     `json:"drones"`
	Waves   int     `json:"waves"`
	Seconds float64 `json:"seconds"` // from the rollout's start to its end
	// Commands are the distinct commands the drones received.
	Commands uint64 `json:"commands"`
	// Duplicates are commands the ground sent a drone twice (the same id,
	// signed again): what a resumed or confused ground would do.
	Duplicates uint64 `json:"duplicates"`
	// Lost are targets that never received their command.
	Lost        int     `json:"lost"`
	GroundRSSMB float64 `json:"ground_rss_mb"` // dronectl ground's peak resident set (VmHWM)
	GroundCPUS  float64 `json:"ground_cpu_s"`  // its CPU time over the rollout
	Broker      string  `json:"broker"`
	// NodeKilled names the broker node killed in the middle of the second
	// wave; "" for none.
	NodeKilled string `json:"node_killed,omitempty"`
	// KilledAtDone is how many of the second wave's drones were done
	// when the node was killed.
	KilledAtDone int `json:"killed_at_done,omitempty"`
	// Redelivered are commands the broker delivered again with the same
	// bytes (QoS 1 after its ack wait or a reconnect), refused by the
	// drones as replays.
	Redelivered uint64 `json:"redelivered"`
	State       string `json:"state"`
	Done        int    `json:"done"`
	Failed      int    `json:"failed"`
	Unreached   int    `json:"unreached"`
	// SwarmStartS is how long the 1,000 drones took to come online.
	SwarmStartS float64 `json:"swarm_start_s"`
}

// Rollout benchmark settings.
const (
	rolloutDrones  = 1000
	rolloutWaves   = "1,10%,50%,100%"
	rolloutTimeout = 10 * time.Minute
	swarmPhase     = 200 * time.Millisecond // each simulated hand-over phase
	followEvery    = 500 * time.Millisecond // as dronectl rollout reads the record
)

// Releases the swarm flies, pinned; the simulated drones pull nothing.
const (
	benchV1 = "127.0.0.1:5000/flight:v1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	benchV2 = "127.0.0.1:5000/flight:v2@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// benchRollout takes v2 over 1,000 simulated drones (drone-swarm, the
// real agent code) in four waves through dronectl ground on a three-node
// NATS cluster (MQTT + JetStream); with kill, one broker node is killed in
// the middle of the second wave.
func benchRollout(ctx context.Context, dir string, kill bool, logs io.Writer) (rolloutLine, error) {
	line := rolloutLine{Bench: "rollout", Drones: rolloutDrones, Broker: "nats-cluster-3"}
	work, err := os.MkdirTemp("", "skyswap-bench-rollout-")
	if err != nil {
		return line, err
	}
	defer os.RemoveAll(work)
	c, err := rig.StartCluster(ctx, rig.ClusterConfig{Bin: filepath.Join(dir, "nats-server"), Dir: filepath.Join(work, "cluster"), Logs: logs})
	if err != nil {
		return line, err
	}
	defer c.Stop()
	keys := filepath.Join(work, "keys")
	pub, priv, err := command.GenerateKey()
	if err != nil {
		return line, err
	}
	os.MkdirAll(keys, 0o700)
	if err := command.WritePrivateKey(filepath.Join(keys, "ground.key"), priv); err != nil {
		return line, err
	}
	if err := command.WritePublicKey(filepath.Join(keys, "ground.pub"), pub); err != nil {
		return line, err
	}
	// The ground first: it hears each drone's state as the drone comes
	// online, not only from what the nodes retained.
	g, err := rig.StartGround(ctx, rig.GroundConfig{Bin: filepath.Join(dir, "dronectl"), Dir: filepath.Join(work, "ground"),
		KeyFile: filepath.Join(keys, "ground.key"), Broker: c.URL, Logs: logs})
	if err != nil {
		return line, err
	}
	defer g.Stop()
	began := time.Now()
	sw, err := swarm.StartProcess(ctx, filepath.Join(dir, "drone-swarm"), logs, "-n", strconv.Itoa(rolloutDrones), "-broker", c.URL,
		"-trust", command.KeyID(pub)+"="+filepath.Join(keys, "ground.pub"), "-image", benchV1, "-labels", "site=field-a",
		"-pull", swarmPhase.String(), "-phase", swarmPhase.String(), "-dir", filepath.Join(work, "swarm"))
	if err != nil {
		return line, err
	}
	line.SwarmStartS = r3(time.Since(began).Seconds())
	stopped := false
	defer func() {
		if !stopped {
			sw.Stop()
		}
	}()
	rec, err := runRollout(ctx, g, c, kill, &line)
	if err != nil {
		return line, err
	}
	stopped = true
	st, err := sw.Stop()
	if err != nil {
		return line, err
	}
	total := rec.Counts(-1)
	line.Drones, line.Waves = total.Drones, len(rec.Waves)
	line.State, line.Done, line.Failed, line.Unreached = string(rec.State), total.Done, total.Failed, total.Unreached
	line.Commands, line.Duplicates, line.Redelivered = st.Commands, st.Duplicates, st.Redelivered
	line.Lost = max(0, rolloutDrones-int(st.Commands))
	if line.GroundRSSMB, err = peakRSSMB(g.Pid()); err != nil {
		return line, err
	}
	return line, nil
}

// runRollout starts the rollout at the ground, kills a broker node in the
// middle of the second wave (with kill), and follows it to its end,
// timing it and the ground's CPU.
func runRollout(ctx context.Context, g *rig.GroundStation, c *rig.Cluster, kill bool, line *rolloutLine) (rollout.Record, error) {
	cl := &web.Client{URL: g.URL}
	waves, err := rollout.ParseWaves(rolloutWaves)
	if err != nil {
		return rollout.Record{}, err
	}
	cpu0, err := cpuTicks(g.Pid())
	if err != nil {
		return rollout.Record{}, err
	}
	start := time.Now()
	rec, err := cl.StartRollout(ctx, rollout.Spec{Image: benchV2, All: true, Waves: waves, TTL: rollout.Duration(5 * time.Minute),
		Timeout: rollout.Duration(5 * time.Minute)})
	if err != nil {
		return rec, fmt.Errorf("start the rollout: %w", err)
	}
	if len(rec.Drones) != rolloutDrones {
		return rec, fmt.Errorf("the rollout targets %d drones, want %d: the ground missed some drones' states", len(rec.Drones), rolloutDrones)
	}
	fctx, cancel := context.WithTimeout(ctx, rolloutTimeout)
	defer cancel()
	rec, err = cl.FollowRollout(fctx, rec.ID, followEvery, func(r rollout.Record) {
		// In the middle of the second wave: some of its drones done or a
		// second gone, the rest in flight (a poll cannot miss that: an
		// update takes over a second).
		if w := r.Counts(1); kill && line.NodeKilled == "" && r.Wave == 1 && w.InProgress > 0 &&
			(w.Done > 0 || time.Since(r.Waves[1].Started) > time.Second) {
			c.Kill(1)
			line.NodeKilled = c.Nodes[1].Name
			line.KilledAtDone = r.Counts(1).Done
		}
	}, nil)
	if err != nil {
		return rec, err
	}
	line.Seconds = r3(time.Since(start).Seconds())
	cpu1, err := cpuTicks(g.Pid())
	if err != nil {
		return rec, err
	}
	line.GroundCPUS = r3(float64(cpu1-cpu0) / userHZ)
	return rec, nil
}
