package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/handofftest"
	"github.com/skyswap/skyswap/hw/mono"
)

const (
	testApp    = "hotest"
	testPeriod = 2500 * time.Microsecond
)

// fixture is one test's bus: an embedded NATS server, the actuator ledger,
// a fake runtime, and the in-process instances it started.
type fixture struct {
	t      *testing.T
	bus    *handofftest.Bus
	ledger *handofftest.Ledger
	rt     *handofftest.Runtime
	logs   *syncBuffer
	log    *slog.Logger

	mu    sync.Mutex
	insts map[string]*handofftest.Instance
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, bus: handofftest.NewBus(t), ledger: handofftest.NewLedger(),
		rt: &handofftest.Runtime{}, logs: &syncBuffer{}, insts: map[string]*handofftest.Instance{}}
	f.log = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(f.rt.StopAll)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs.String())
		}
	})
	return f
}

// cfg is a participant configuration with the package defaults.
func (f *fixture) cfg(instance string, role handoff.Role, epoch uint64) handoff.ParticipantConfig {
	return handoff.ParticipantConfig{
		App: testApp, Instance: instance, Version: "test", Schema: handofftest.Schema,
		Role: role, Epoch: epoch, Period: testPeriod, Lease: f.ledger,
		Log: f.log.With("instance", instance),
	}
}

// start starts an in-process instance; the test's cleanup stops it.
func (f *fixture) start(cfg handoff.ParticipantConfig, model handoff.Model) *handofftest.Instance {
	f.t.Helper()
	in, err := handofftest.StartInstance(context.Background(), f.bus.URL, model, cfg, f.ledger)
	if err != nil {
		f.t.Fatal(err)
	}
	f.register(in)
	return in
}

func (f *fixture) register(in *handofftest.Instance) {
	f.mu.Lock()
	f.insts[in.Name] = in
	f.mu.Unlock()
	f.t.Cleanup(func() { in.Stop() })
}

// instance returns the instance started as name, or nil.
func (f *fixture) instance(name string) *handofftest.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.insts[name]
}

// startOwner starts owner at epoch 1, registered with the runtime, and
// waits until it has written a few ticks.
func (f *fixture) startOwner(name string) *handofftest.Instance {
	f.t.Helper()
	in := f.start(f.cfg(name, handoff.RoleOwner, 1), nil)
	f.rt.Add(name, in)
	waitFor(f.t, 5*time.Second, "the owner writes", func() bool { return len(f.ledger.Ticks(name)) >= 20 })
	return in
}

// candidates makes the fake runtime start a candidate participant with its
// loop for every ModeCandidate start, configured by cfg (nil: defaults).
func (f *fixture) candidates(model handoff.Model, cfg func(*handoff.ParticipantConfig)) {
	f.rt.OnStart = func(ctx context.Context, s coordinator.Spec) (handofftest.Stopper, error) {
		c := f.cfg(s.Instance, handoff.RoleCandidate, 0)
		if cfg != nil {
			cfg(&c)
		}
		in, err := handofftest.StartInstance(ctx, f.bus.URL, model, c, f.ledger)
		if err != nil {
			return nil, err
		}
		f.register(in)
		return in, nil
	}
}

// coordinator returns a coordinator on its own connection using the
// fixture's runtime.
func (f *fixture) coordinator() *coordinator.Coordinator {
	f.t.Helper()
	return f.coordinatorOn(f.rt)
}

// coordinatorOn returns a coordinator on its own connection using rt.
func (f *fixture) coordinatorOn(rt coordinator.Runtime) *coordinator.Coordinator {
	f.t.Helper()
	c, err := coordinator.New(f.bus.Connect("coordinator"), rt,
		coordinator.Config{App: testApp, Lease: f.ledger, Log: f.log.With("who", "coordinator")})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(c.Close)
	return c
}

// request sends ctl to instance's control subject and decodes the reply.
func request(t *testing.T, nc *nats.Conn, instance string, data []byte) handoff.Reply {
	t.Helper()
	m, err := nc.Request(handoff.SubjectsFor(testApp).Control(instance), data, 5*time.Second)
	if err != nil {
		t.Fatalf("request to %s: %v", instance, err)
	}
	var r handoff.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply %q: %v", m.Data, err)
	}
	return r
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond every 5 ms until it holds, failing the test after
// timeout. It returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := mono.Now()
	deadline := start + int64(timeout)
	for !cond() {
		if mono.Now() > deadline {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return mono.Since(start)
}

// currentTick is the tick grid's current tick.
func currentTick() int64 { return mono.Now() / int64(testPeriod) }

// sleepTicks sleeps n ticks of the grid.
func sleepTicks(n int) { time.Sleep(time.Duration(n) * testPeriod) }

// events records a coordinator's events.
type events struct {
	mu  sync.Mutex
	all []handoff.Event
}

func (e *events) add(ev handoff.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) phases() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ps []string
	for _, ev := range e.all {
		ps = append(ps, ev.Phase)
	}
	return ps
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
