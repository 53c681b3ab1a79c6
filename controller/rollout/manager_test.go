package rollout_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/broker"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/rollout"
	"github.com/skyswap/skyswap/rig"
	"github.com/skyswap/skyswap/rig/swarm"
)

const (
	v1 = "127.0.0.1:5000/flight:v1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	v2 = "127.0.0.1:5000/flight:v2@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	v3 = "127.0.0.1:5000/flight:v3@sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

// Bounds for a loaded 2-core machine: a simulated update takes about a
// second, a 20-drone rollout a few.
const (
	waitRollout = 2 * time.Minute
	quiet       = 2 * time.Second // long enough for a paused rollout to show it sends nothing
)

// Simulated drones update in about a second: 100 ms a phase.
var quick = swarm.Sim{Pull: 100 * time.Millisecond, Phase: 100 * time.Millisecond}

// fleet is a broker, a swarm of simulated drones flying v1 on it, and
// the ground's key.
type fleet struct {
	broker string
	swarm  *swarm.Swarm
	key    ed25519.PrivateKey
}

func startFleet(t *testing.T, n int, sim swarm.Sim) *fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	pub, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := swarm.Start(ctx, swarm.Config{Broker: b.URL(), N: n, Dir: t.TempDir(), Image: v1, Sim: sim,
		Keys: map[string]ed25519.PublicKey{command.KeyID(pub): pub}, Labels: map[string]string{"site": "field-a"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f := &fleet{broker: b.URL(), swarm: s, key: priv}
	f.awaitFiled(t, n)
	return f
}

// awaitFiled waits until the broker serves n drones' retained states to a
// new subscription. NATS files a retained message a moment after it
// acknowledges it, and a Manager opened in that moment never hears the
// state: the fleet is on the air before the ground starts, as in the field.
func (f *fleet) awaitFiled(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitRollout)
	defer cancel()
	for {
		w, err := push.Watch(ctx, push.Config{Broker: f.broker}, "fleet/+/state")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for quiet := time.After(200 * time.Millisecond); len(seen) < n; {
			select {
			case m := <-w.Messages():
				if m.Retained {
					seen[m.Topic] = true
				}
				continue
			case <-quiet:
			case <-ctx.Done():
				w.Close()
				t.Fatalf("the broker serves %d of %d drones' retained states: %v", len(seen), n, ctx.Err())
			}
			break
		}
		w.Close()
		if len(seen) == n {
			return
		}
	}
}

// manager opens a Manager on f's broker with its records in dir.
func (f *fleet) manager(t *testing.T, dir string) *rollout.Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := rollout.Open(ctx, rollout.Config{Link: push.Config{Broker: f.broker, Key: f.key}, Dir: dir,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func start(t *testing.T, m *rollout.Manager, spec rollout.Spec) rollout.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, err := m.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// await waits until rollout id satisfies ok.
func await(t *testing.T, m *rollout.Manager, id, what string, ok func(rollout.Record) bool) rollout.Record {
	t.Helper()
	deadline := time.Now().Add(waitRollout)
	for {
		rec, err := m.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s:\n%s", what, waitRollout, strings.Join(rollout.Lines(rec), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ended(rec rollout.Record) bool { return !rec.State.Live() }

// received is which of the swarm's drones got a command whose id has
// prefix.
func (f *fleet) received(prefix string) []string {
	var out []string
	for i, d := range f.swarm.Drones() {
		if slices.ContainsFunc(f.swarm.Received(i), func(id string) bool { return strings.HasPrefix(id, prefix) }) {
			out = append(out, d)
		}
	}
	return out
}

// TestThresholdRollback: 20 simulated drones; the second wave's failures
// go over max_failed, so the rollout stops there and rolls back every
// drone it updated (the first wave's and the second's that committed);
// the third wave is never sent.
func TestThresholdRollback(t *testing.T) {
	sim := quick
	sim.FailRate, sim.FailImage = 0.4, "flight:v3"
	f := startFleet(t, 20, sim)
	m := f.manager(t, t.TempDir())
	// Order the targets so that the first wave's two drones succeed and
	// the second's six hold failures.
	var good, bad []string
	for _, d := range f.swarm.Drones() {
		if fails, _ := sim.Fails(d, v3); fails {
			bad = append(bad, d)
		} else {
			good = append(good, d)
		}
	}
	if len(bad) < 2 || len(good) < 6 {
		t.Fatalf("the seed makes %d of 20 fail: pick another", len(bad))
	}
	targets := append(append(append([]string{}, good[:2]...), good[2:5]...), bad[:3]...)
	for _, d := range f.swarm.Drones() {
		if !slices.Contains(targets, d) {
			targets = append(targets, d)
		}
	}
	waves, _ := rollout.ParseWaves("2,8,100%")
	th, _ := rollout.ParseThreshold("20%")
	rec := start(t, m, rollout.Spec{Image: v3, Drones: targets, Waves: waves, MaxFailed: th, MinDone: 4, OnAbort: rollout.Rollback})
	rec = await(t, m, rec.ID, "the rollout ends", ended)
	if rec.State != rollout.RolledBk || !strings.Contains(rec.Reason, "wave 2") {
		t.Fatalf("state %s (%s), want rolled_back for wave 2:\n%s", rec.State, rec.Reason, strings.Join(rollout.Lines(rec), "\n"))
	}
	for _, d := range rec.Drones {
		switch {
		case d.Wave == 2 && d.Update.Status != rollout.Pending:
			t.Errorf("%s of the third wave: %s, want never sent", d.ID, d.Update.Status)
		case d.Update.Status == rollout.Done && (d.Rollback == nil || d.Rollback.Status != rollout.Done):
			t.Errorf("%s was updated and not rolled back: %+v", d.ID, d.Rollback)
		case d.Update.Status == rollout.Failed && d.Rollback != nil:
			t.Errorf("%s failed (still on v1) and was rolled back", d.ID)
		case d.Wave < 2 && d.Update.Status != rollout.Done && d.Update.Status != rollout.Failed:
			t.Errorf("%s of wave %d: %s", d.ID, d.Wave+1, d.Update.Status)
		}
	}
	if c := rec.Counts(1); c.Failed == 0 || c.Done == 0 {
		t.Errorf("wave 2: %+v, want failures and successes", c)
	}
	if got, want := f.received(rec.ID+".u."), countWave(rec, 0)+countWave(rec, 1); len(got) != want {
		t.Errorf("%d drones got an update (%v), want the first two waves' %d:\n%s", len(got), got, want, strings.Join(rollout.Lines(rec), "\n"))
	}
	if st := f.swarm.Stats(); st.Duplicates != 0 || st.Redelivered != 0 {
		t.Errorf("swarm %+v: a command came twice", st)
	}
}

func countWave(rec rollout.Record, w int) int {
	n := 0
	for _, d := range rec.Drones {
		if d.Wave == w {
			n++
		}
	}
	return n
}

// TestPauseResumeCancel: a paused rollout sends nothing new while its
// drones in flight finish; resumed, it completes. A canceled one ends
// with its later waves never sent.
func TestPauseResumeCancel(t *testing.T) {
	f := startFleet(t, 20, quick)
	m := f.manager(t, t.TempDir())
	waves, _ := rollout.ParseWaves("1,50%,100%")
	rec := start(t, m, rollout.Spec{Image: v2, Select: rollout.Selector{"site": "field-a"}, Waves: waves})
	if len(rec.Drones) != 20 {
		t.Fatalf("the selector picked %d drones, want 20", len(rec.Drones))
	}
	if _, err := m.Pause(rec.ID); err != nil {
		t.Fatal(err)
	}
	settled := func(r rollout.Record) bool { return r.Counts(-1).InProgress == 0 }
	rec = await(t, m, rec.ID, "the paused rollout's drones in flight finish", settled)
	sent := 20 - rec.Counts(-1).Pending
	time.Sleep(quiet)
	if rec, _ = m.Get(rec.ID); rec.State != rollout.Paused || 20-rec.Counts(-1).Pending != sent {
		t.Fatalf("paused: state %s, %d sent, want %d:\n%s", rec.State, 20-rec.Counts(-1).Pending, sent, strings.Join(rollout.Lines(rec), "\n"))
	}
	if _, err := m.Resume(rec.ID); err != nil {
		t.Fatal(err)
	}
	rec = await(t, m, rec.ID, "the resumed rollout completes", ended)
	if rec.State != rollout.Completed || !rec.Succeeded() {
		t.Fatalf("resumed: %s", strings.Join(rollout.Lines(rec), "\n"))
	}
	if _, err := m.Resume(rec.ID); !errors.Is(err, rollout.ErrState) {
		t.Errorf("resume of a completed rollout: %v, want ErrState", err)
	}

	rec = start(t, m, rollout.Spec{Image: v3, All: true, Waves: waves, Soak: rollout.Duration(time.Minute)})
	rec = await(t, m, rec.ID, "the first wave ends", func(r rollout.Record) bool { return !r.Waves[0].Ended.IsZero() })
	if _, err := m.Cancel(rec.ID); err != nil {
		t.Fatal(err)
	}
	rec = await(t, m, rec.ID, "the canceled rollout ends", ended)
	if rec.State != rollout.Canceled || rec.Counts(-1).Pending != 19 || len(f.received(rec.ID)) != 1 {
		t.Errorf("canceled: %s; %d drones got a command", strings.Join(rollout.Lines(rec), "\n"), len(f.received(rec.ID)))
	}
}

// TestOffline: a command to an offline drone waits in its session: a
// drone back before the command expires updates like the others; one
// that stays away is unreached, not failed, and a wave of them does not
// abort the rollout. Back after the expiry, it refuses the stale command
// and the rollout counts a late event.
func TestOffline(t *testing.T) {
	f := startFleet(t, 6, quick)
	for _, i := range []int{1, 2} {
		if err := f.swarm.Stop(i); err != nil {
			t.Fatal(err)
		}
	}
	m := f.manager(t, t.TempDir())
	waves, _ := rollout.ParseWaves("100%")
	ttl := 5 * time.Second
	rec := start(t, m, rollout.Spec{Image: v2, All: true, Waves: waves, TTL: rollout.Duration(ttl), Timeout: rollout.Duration(time.Minute)})
	if len(rec.Drones) != 6 {
		t.Fatalf("%d targets, want the 6 drones, offline ones too", len(rec.Drones))
	}
	rec = await(t, m, rec.ID, "the commands are sent", func(r rollout.Record) bool { return r.Counts(-1).Pending == 0 })
	for _, d := range rec.Drones {
		if life := d.Update.Expires.Sub(d.Update.Sent); life > ttl || life < ttl-time.Second {
			t.Errorf("%s's command lives %s, want the rollout's ttl %s", d.ID, life, ttl)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.swarm.Restart(ctx, 1); err != nil { // back in time
		t.Fatal(err)
	}
	rec = await(t, m, rec.ID, "the rollout ends", ended)
	c := rec.Counts(-1)
	if rec.State != rollout.Completed || c.Done != 5 || c.Unreached != 1 || c.Failed != 0 {
		t.Fatalf("%s", strings.Join(rollout.Lines(rec), "\n"))
	}
	if d := rec.Drones[2]; d.ID != "sim-0003" || d.Update.Status != rollout.Unreached {
		t.Errorf("drone %+v, want sim-0003 unreached", d)
	}
	before := m.Stats().Late
	if err := f.swarm.Restart(ctx, 2); err != nil { // too late
		t.Fatal(err)
	}
	rec = await(t, m, rec.ID, "the stale command's refusal counted", func(r rollout.Record) bool { return r.Ignored.Late > 0 })
	if rec.Drones[2].Update.Status != rollout.Unreached || m.Stats().Late <= before {
		t.Errorf("after the late drone: %+v, stats %+v", rec.Drones[2], m.Stats())
	}
}

// TestBadInput: an event of a rollout's command from another drone, an
// event of a rollout the ground does not know, a state that names
// another drone than its topic: each is ignored and counted, and the
// rollout completes as if they had not come.
func TestBadInput(t *testing.T) {
	f := startFleet(t, 4, swarm.Sim{Pull: 500 * time.Millisecond, Phase: 500 * time.Millisecond})
	m := f.manager(t, t.TempDir())
	waves, _ := rollout.ParseWaves("100%")
	rec := start(t, m, rollout.Spec{Image: v2, All: true, Waves: waves})
	p, err := brokertest.Dial(f.broker, brokertest.PeerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(topic string, v any) {
		b, _ := json.Marshal(v)
		p.MustPublish(t, topic, 1, false, b)
	}
	victim := rollout.CommandID(rec.ID, "u", "sim-0001")
	await(t, m, rec.ID, "sent", func(r rollout.Record) bool { return r.Counts(-1).Pending == 0 })
	// sim-0002 answers for sim-0001's command, that it failed.
	send("fleet/sim-0002/events", report.Event{Drone: "sim-0002", Command: victim, Phase: report.PhaseRefused, Error: "forged"})
	send("fleet/sim-0002/events", report.Event{Drone: "sim-0001", Command: victim, Phase: report.PhaseRefused, Error: "forged"})
	send("fleet/sim-0001/events", report.Event{Drone: "sim-0002", Command: victim, Phase: report.PhaseRefused, Error: "forged"})
	send("fleet/sim-0001/events", report.Event{Drone: "sim-0001", Command: "ro-00000000.u.sim-0001", Phase: report.PhaseRefused})
	send("fleet/sim-0003/state", report.State{Drone: "sim-0004", Online: true, Labels: map[string]string{"site": "elsewhere"}})
	p.MustPublish(t, "fleet/sim-0003/events", 1, false, []byte("{not json"))
	rec = await(t, m, rec.ID, "the rollout ends", ended)
	if !rec.Succeeded() || rec.Ignored.WrongDrone != 3 {
		t.Errorf("%s\nignored %+v, want every drone done and 3 wrong-drone events", strings.Join(rollout.Lines(rec), "\n"), rec.Ignored)
	}
	st := m.Stats()
	if st.WrongDrone != 3 || st.UnknownRollout != 1 || st.ForgedState != 1 || st.Malformed != 1 {
		t.Errorf("stats %+v, want 3 wrong drone, 1 unknown rollout, 1 forged state, 1 malformed", st)
	}
}

// TestCluster: the fleet's broker is a three-node NATS cluster (MQTT +
// JetStream); the drones spread over its nodes and the ground takes them
// all in order. A node is killed in the middle of the second wave: its
// drones move to another node with their sessions, and the rollout
// completes with every drone updated once.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := rig.BuildNATSServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &tail{}
	c, err := rig.StartCluster(ctx, rig.ClusterConfig{Bin: bin, Dir: t.TempDir(), Logs: logs})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	t.Cleanup(c.Stop)
	defer func() {
		if t.Failed() {
			t.Logf("the nodes' logs:\n%s", logs)
		}
	}()
	pub, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := swarm.Start(ctx, swarm.Config{Broker: c.URL, N: 12, Dir: t.TempDir(), Image: v1,
		Sim:  swarm.Sim{Pull: 300 * time.Millisecond, Phase: 300 * time.Millisecond},
		Keys: map[string]ed25519.PublicKey{command.KeyID(pub): pub}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	f := &fleet{broker: c.URL, swarm: s, key: priv}
	m := f.manager(t, t.TempDir())
	waves, _ := rollout.ParseWaves("2,100%")
	rec := start(t, m, rollout.Spec{Image: v2, All: true, Waves: waves})
	if len(rec.Drones) != 12 {
		t.Fatalf("%d targets, want the 12 drones, whatever node they reported through", len(rec.Drones))
	}
	await(t, m, rec.ID, "the second wave under way", func(r rollout.Record) bool { return r.Wave == 1 && r.Counts(1).InProgress > 0 })
	c.Kill(1)
	rec = await(t, m, rec.ID, "the rollout ends", ended)
	if !rec.Succeeded() {
		t.Fatalf("after a node died: %s", strings.Join(rollout.Lines(rec), "\n"))
	}
	if st := s.Stats(); st.Duplicates != 0 || st.Commands != 12 {
		t.Errorf("swarm %+v: want each drone one command, none sent twice", st)
	}
}

// tail keeps the last 64 KiB written.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > 64<<10 {
		w.b = w.b[len(w.b)-64<<10:]
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// TestRepublish: a ground killed after recording four commands as sent
// and before publishing all of them. At the next Open, the command the
// broker acknowledged is not sent again, nor the one a drone answered
// while the ground was down; the two nobody answered are published again
// with the same bytes, so the one whose drone was offline with the first
// copy waiting is a redelivery it refuses, not a second command.
func TestRepublish(t *testing.T) {
	f := startFleet(t, 4, quick)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	link := push.Config{Broker: f.broker, Key: f.key}
	m0, err := rollout.Open(ctx, rollout.Config{Link: link, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	m0.Close() // the ground's session now keeps the drones' events

	now := time.Now()
	ttl := time.Minute
	issued := now.UTC().Truncate(time.Second)
	waves, _ := rollout.ParseWaves("100%")
	rec := rollout.Record{ID: rollout.IDPrefix + "killed", State: rollout.Running, Created: now,
		Spec:  rollout.Spec{Image: v2, All: true, Waves: waves, TTL: rollout.Duration(ttl), Timeout: rollout.Duration(time.Minute)},
		Waves: []rollout.Wave{{Size: 4, Started: now}}}
	signer := push.Signer{Key: f.key, TTL: ttl, Now: func() time.Time { return issued }}
	w, err := push.Watch(ctx, push.Config{Broker: f.broker, Session: "test-first-copies"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	drones := f.swarm.Drones()
	if err := f.swarm.Stop(2); err != nil {
		t.Fatal(err)
	}
	for i, d := range drones {
		id := rollout.CommandID(rec.ID, "u", d)
		up := rollout.Cmd{ID: id, Status: rollout.Sent, Sent: now, Expires: issued.Add(ttl)}
		if i == 0 {
			up.Published = now // acknowledged: never published in this test, so never received
		}
		rec.Drones = append(rec.Drones, rollout.Drone{ID: d, Previous: v1, Update: up})
		if i == 1 || i == 2 { // reached the broker before the kill; drone 2 is offline
			c, err := signer.Sign(command.Command{ID: id, Kind: command.KindUpdate, Drone: d, App: "flight", Image: v2})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Send(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	for len(f.swarm.Received(1)) == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	dir := t.TempDir()
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, rec.ID+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	m := f.manager(t, dir)
	done := func(i int) func(rollout.Record) bool {
		return func(r rollout.Record) bool { return r.Drones[i].Update.Status == rollout.Done }
	}
	await(t, m, rec.ID, "the unanswered command to an online drone is published again", done(3))
	if err := f.swarm.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	got := await(t, m, rec.ID, "the drone back online updates once", done(2))
	await(t, m, rec.ID, "the drone that answered while the ground was down is done", done(1))
	if st := f.swarm.Stats(); st.Commands != 3 || st.Duplicates != 0 || st.Redelivered != 1 {
		t.Errorf("swarm %+v: want drones 2-4 one command each, drone 3 a copy of the same bytes", st)
	}
	if r := f.swarm.Received(0); len(r) != 0 {
		t.Errorf("%s received %v: a command the broker acknowledged was published again", drones[0], r)
	}
	if d := got.Drones[0].Update; d.Status != rollout.Sent {
		t.Errorf("%s's command is %s, want still sent (it expires unreached)", drones[0], d.Status)
	}
	for i := 1; i < 4; i++ {
		if got.Drones[i].Update.Published.IsZero() && i != 1 {
			t.Errorf("%s's command published again is not recorded as published", drones[i])
		}
	}
}
