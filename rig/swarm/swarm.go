// Package swarm is a test tool: many drone agents' MQTT side in one
// process (drone-swarm -n 1000), in the spirit of Kubernetes' kwok. Each
// simulated drone is its own MQTT client and identity (agent/broker,
// persistent session, last will) on the real agent code: agent.Agent
// parses, verifies and deduplicates each command (agent/command, the
// replay list on disk), journals the update (agent/journal) and reports
// its events and retained state (agent/report). Only the runtime is
// simulated: no containerd, no flight app; an update walks the hand-over's
// phases with configurable delays and fails at a configurable rate (Sim).
// It proves the ground and the broker at fleet scale; the real agent with
// containerd stays the product path.
package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/agent"
	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/controller/push"
)

// Config configures Start. Broker, N, Dir and Keys are required; every
// other zero value means the default documented on the field.
type Config struct {
	// Broker is the MQTT broker's URL, or a cluster's nodes
	// comma-separated: drone i takes the list rotated by i, so the
	// drones spread over the nodes and each moves to the next when its
	// node dies.
	Broker string
	// N is how many drones.
	N int
	// Prefix names the drones Prefix0001, Prefix0002...; "" means
	// "sim-".
	Prefix string
	// Dir holds each drone's journal and replay list, in Dir/<id>.
	Dir string
	// Keys are the ground keys the drones trust, by key id
	// (command.LoadPublicKeys).
	Keys map[string]ed25519.PublicKey
	// Labels are every drone's labels (AGENT_LABELS); nil means none.
	Labels map[string]string
	// Image is the release every drone flies from the start (its
	// journal's committed release of App); "" means none, so the first
	// update deploys.
	Image string
	// App is the app the drones fly; "" means push.DefaultApp.
	App string
	// Sim is how the updates behave.
	Sim Sim
	// Connect bounds how many drones connect at once; 0 means 32.
	Connect int
	// Log receives the drones' logs; nil discards them.
	Log *slog.Logger
}

// Stats count the commands the drones received.
type Stats struct {
	Drones    int    `json:"drones"`
	Connected int    `json:"connected"` // links up now
	Commands  uint64 `json:"commands"`  // distinct command ids received
	// Redelivered: a command received again with the same bytes (the
	// broker's at-least-once QoS 1: a copy after its ack wait, or after
	// a reconnect); the agent refuses it as a replay.
	Redelivered uint64 `json:"redelivered"`
	// Duplicates: a command id received again with other bytes: the
	// ground signed and sent it a second time.
	Duplicates uint64 `json:"duplicates"`
}

// Swarm is the running drones.
type Swarm struct {
	cfg    Config
	drones []*drone
}

// drone is one simulated drone.
type drone struct {
	id string

	mu     sync.Mutex
	client *broker.Client
	a      *agent.Agent
	seen   map[string][32]byte // command id -> its payload's hash

	commands, redelivered, duplicates atomic.Uint64
}

// Start starts cfg.N drones, each connected and online when it returns.
// ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Swarm, error) {
	if cfg.N <= 0 || cfg.Broker == "" || cfg.Dir == "" || len(cfg.Keys) == 0 {
		return nil, errors.New("swarm: Config needs Broker, N, Dir and Keys")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sim-"
	}
	if cfg.App == "" {
		cfg.App = push.DefaultApp
	}
	if cfg.Connect <= 0 {
		cfg.Connect = 32
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Swarm{cfg: cfg, drones: make([]*drone, cfg.N)}
	errs := make([]error, cfg.N)
	sem := make(chan struct{}, cfg.Connect)
	var wg sync.WaitGroup
	for i := range cfg.N {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.drones[i], errs[i] = start(ctx, cfg, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Name is the id of drone i (from 0) of a swarm with prefix.
func Name(prefix string, i int) string { return fmt.Sprintf("%s%04d", prefix, i+1) }

func start(ctx context.Context, cfg Config, i int) (*drone, error) {
	d := &drone{id: Name(cfg.Prefix, i), seen: map[string][32]byte{}}
	return d, d.connect(ctx, cfg, i)
}

// connect opens the drone's journal and replay list, makes its agent and
// connects it: online when it returns.
func (d *drone) connect(ctx context.Context, cfg Config, i int) error {
	dir := filepath.Join(cfg.Dir, d.id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	seen, err := command.OpenSeen(filepath.Join(dir, "seen.json"))
	if err != nil {
		return fmt.Errorf("swarm: %s: %w", d.id, err)
	}
	j, err := journal.Open(dir)
	if err != nil {
		return fmt.Errorf("swarm: %s: %w", d.id, err)
	}
	if err := flying(j, cfg); err != nil {
		return fmt.Errorf("swarm: %s: %w", d.id, err)
	}
	log := cfg.Log.With("drone", d.id)
	client, err := broker.New(broker.Config{URL: rotate(cfg.Broker, i), Drone: d.id,
		WillPayload: agent.OfflineState(d.id, cfg.Labels), Log: log})
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{Drone: d.id, Labels: cfg.Labels, Verifier: command.Verifier{Keys: cfg.Keys}, Log: log},
		client, images{cfg.Sim}, instances{}, &updater{drone: d.id, sim: cfg.Sim}, seen, j)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.client, d.a = client, a
	d.mu.Unlock()
	if err := client.Start(ctx, func(p []byte) { d.handle(a, p) }); err != nil {
		return fmt.Errorf("swarm: %s: %w", d.id, err)
	}
	if err := a.PublishState(ctx); err != nil {
		return fmt.Errorf("swarm: %s: state: %w", d.id, err)
	}
	return nil
}

// flying records cfg.Image as the app's committed release, owned by an
// instance of it, unless the journal has one.
func flying(j *journal.Journal, cfg Config) error {
	if cfg.Image == "" || j.State().Owner[cfg.App] != "" {
		return nil
	}
	rel := journal.NewRelease(cfg.App, cfg.Image, "", nil, time.Now())
	return j.Deploy(journal.Instance{ID: rel.ID, Release: rel})
}

// rotate returns the comma-separated list urls rotated left by i.
func rotate(urls string, i int) string {
	l := strings.Split(urls, ",")
	k := i % len(l)
	return strings.Join(append(l[k:], l[:k]...), ",")
}

// handle counts the command, then lets the agent handle it.
func (d *drone) handle(a *agent.Agent, payload []byte) {
	if c, err := command.Parse(payload); err == nil {
		sum := sha256.Sum256(payload)
		d.mu.Lock()
		prev, again := d.seen[c.ID]
		d.seen[c.ID] = sum
		d.mu.Unlock()
		switch {
		case !again:
			d.commands.Add(1)
		case bytes.Equal(prev[:], sum[:]):
			d.redelivered.Add(1)
		default:
			d.duplicates.Add(1)
		}
	}
	a.Handle(context.Background(), payload)
}

// Drones returns the drones' ids, in order.
func (s *Swarm) Drones() []string {
	out := make([]string, len(s.drones))
	for i, d := range s.drones {
		out[i] = d.id
	}
	return out
}

// Stats returns the swarm's counters.
func (s *Swarm) Stats() Stats {
	st := Stats{Drones: len(s.drones)}
	for _, d := range s.drones {
		if d == nil {
			continue
		}
		if c := d.link(); c != nil && c.Stats().Connected {
			st.Connected++
		}
		st.Commands += d.commands.Load()
		st.Redelivered += d.redelivered.Load()
		st.Duplicates += d.duplicates.Load()
	}
	return st
}

// Received returns the ids of the commands drone i received, each once.
func (s *Swarm) Received(i int) []string {
	d := s.drones[i]
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.seen))
	for id := range d.seen {
		out = append(out, id)
	}
	return out
}

// Stop takes drone i off the air: it says goodbye (offline, retained) and
// disconnects; its session keeps the commands sent meanwhile.
func (s *Swarm) Stop(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.drones[i].link().Close(ctx)
}

// Restart brings drone i back on the air after Stop, with its journal
// and replay list: its session delivers what was sent meanwhile.
func (s *Swarm) Restart(ctx context.Context, i int) error {
	return s.drones[i].connect(ctx, s.cfg, i)
}

func (d *drone) link() *broker.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client
}

// Close stops every drone.
func (s *Swarm) Close() {
	var wg sync.WaitGroup
	for _, d := range s.drones {
		if d == nil || d.link() == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d.link().Close(ctx)
		}()
	}
	wg.Wait()
}
