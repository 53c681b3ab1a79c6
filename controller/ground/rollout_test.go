package ground_test

import (
	"context"
	"crypto/ed25519"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/broker"
	"github.com/skyswap/skyswap/controller/ground"
	"github.com/skyswap/skyswap/controller/ground/groundtest"
	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/rollout"
	"github.com/skyswap/skyswap/rig"
	"github.com/skyswap/skyswap/rig/swarm"
)

// Releases the simulated drones fly, pinned: they pull nothing.
const (
	simV1 = "127.0.0.1:5000/flight:v1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	simV2 = "127.0.0.1:5000/flight:v2@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// startSwarm starts n simulated drones flying simV1 on st's broker,
// trusting st's key.
func startSwarm(t *testing.T, st *ground.Station, n int) *swarm.Swarm {
	t.Helper()
	pub, err := command.ReadPublicKey(st.PublicKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := swarm.Start(ctx, swarm.Config{Broker: st.BrokerURL, N: n, Dir: t.TempDir(), Image: simV1,
		Keys: map[string]ed25519.PublicKey{st.KeyID: pub}, Sim: swarm.Sim{Pull: 100 * time.Millisecond, Phase: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestRolloutPage: the page shows a rollout as it runs (waves with their
// counts, each drone's outcome), and its buttons pause, resume and cancel
// it, the cancel through a confirmation.
func TestRolloutPage(t *testing.T) {
	b := groundtest.StartBrowser(t)
	st := startStation(t, ground.Config{})
	startSwarm(t, st, 10)
	if err := b.Open(st.URL); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector('#conn').dataset.state === 'live'`, shortWait)
	c := &web.Client{URL: st.URL}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waves, _ := rollout.ParseWaves("2,50%,100%")
	rec, err := c.StartRollout(ctx, rollout.Spec{Image: simV2, All: true, Waves: waves, Soak: rollout.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	shown := `document.querySelector('#rollout').dataset.rollout === ` + quote(rec.ID) + ` && !document.querySelector('#rollout').hidden`
	wait(t, b, shown, shortWait)
	wait(t, b, `document.querySelector('#rollouts li[data-rollout=`+strconv.Quote(rec.ID)+`]') !== null`, shortWait)
	// The first wave commits, then soaks: its row and its drones' cells
	// say so; the rest wait.
	wait(t, b, `document.querySelector('#rollout-waves tr[data-wave="1"] .done')?.textContent === '2'`, longWait)
	wait(t, b, `document.querySelectorAll('#rollout-drones .cell[data-status="done"]').length === 2 && `+
		`document.querySelectorAll('#rollout-drones .cell[data-status="pending"]').length === 8`, shortWait)
	wait(t, b, `/soaking/.test(document.querySelector('#rollout-waves tr[data-wave="1"] .note').textContent)`, shortWait)
	noErrors(t, b, "showing the rollout")

	press := func(button, state string) {
		t.Helper()
		if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.CSS(button))); err != nil {
			t.Fatal(err)
		}
		if state == "" {
			return
		}
		wait(t, b, `document.querySelector('#rollout-state').textContent === `+quote(state), shortWait)
		got, err := c.Rollout(ctx, rec.ID)
		if err != nil || string(got.State) != state {
			t.Fatalf("after %s the ground says %s (%v), want %s", button, got.State, err, state)
		}
	}
	press("#rollout-pause", "paused")
	wait(t, b, `document.querySelector('#rollout-pause').disabled && !document.querySelector('#rollout-resume').disabled`, shortWait)
	press("#rollout-resume", "running")
	press("#rollout-cancel", "")
	wait(t, b, `document.querySelector('#confirm').open && /Cancel rollout/.test(document.querySelector('#confirm-text').textContent)`, shortWait)
	press("#confirm-ok", "canceled")
	wait(t, b, `document.querySelectorAll('#rollout-drones .cell[data-status="pending"]').length === 8 && `+
		`document.querySelector('#rollout-cancel').disabled`, shortWait)
	noErrors(t, b, "through pause, resume and cancel")
	screenshot(t, b, "rollout.png")
}

// TestStackRollout: a rollout over a fleet of one real drone (drone-agent
// on containerd flying the virtual drone, through dronectl ground) and
// nine simulated ones: the real drone is updated by hand-over like the
// others, every phase to commit, and v2 flies.
func TestStackRollout(t *testing.T) {
	s, logs := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v1, err := push.Resolve(ctx, s.Refs["v1"], "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := push.Run(ctx, push.Config{Broker: s.BrokerURL, Drone: s.Drone, Key: s.Key, Timeout: 2 * time.Minute},
		push.Request{Kind: command.KindUpdate, Image: v1}); err != nil {
		t.Fatalf("deploy v1: %v", err)
	}
	if _, err := s.Sim.WaitHover(ctx, longWait); err != nil {
		t.Fatal(err)
	}
	pub := s.Key.Public().(ed25519.PublicKey)
	sw, err := swarm.Start(ctx, swarm.Config{Broker: s.BrokerURL, N: 9, Dir: t.TempDir(), Image: v1,
		Keys: map[string]ed25519.PublicKey{s.KeyID: pub}, Sim: swarm.Sim{Pull: 100 * time.Millisecond, Phase: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	watch, err := rig.WatchDrone(ctx, s.BrokerURL, s.Drone)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	// Two simulated drones first, then the real one among the rest.
	targets := append(sw.Drones()[:2], append([]string{s.Drone}, sw.Drones()[2:]...)...)
	waves, _ := rollout.ParseWaves("2,100%")
	c := &web.Client{URL: s.Ground.URL}
	rec, err := c.StartRollout(ctx, rollout.Spec{Image: s.Refs["v2"], Drones: targets, Waves: waves})
	if err != nil {
		t.Fatal(err)
	}
	rec, err = c.FollowRollout(ctx, rec.ID, 500*time.Millisecond, func(rollout.Record) {}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.tail(20000))
	}
	if !rec.Succeeded() {
		t.Fatalf("%s\n%s", strings.Join(rollout.Lines(rec), "\n"), logs.tail(20000))
	}
	id := rollout.CommandID(rec.ID, "u", s.Drone)
	var phases []string
	for _, e := range watch.Events(id) {
		phases = append(phases, e.Phase)
	}
	t.Logf("the real drone %s in wave %d: %v", s.Drone, 2, phases)
	for _, p := range phasesToCommit {
		if !slices.Contains(phases, p) {
			t.Errorf("the real drone's update went %v: no %s", phases, p)
		}
	}
	tel, _ := watch.Telemetry()
	if tel.Version != "v2" {
		t.Errorf("the real drone flies %q after the rollout, want v2", tel.Version)
	}
	r, err := s.Sim.Report(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.DoubleDrive != 0 || r.Crashed {
		t.Errorf("referee: double drive %d, crashed %v", r.DoubleDrive, r.Crashed)
	}
	if err := s.Land(context.Background(), 30*time.Second); err != nil {
		t.Logf("land: %v", err)
	}
}

// TestGroundKilled: dronectl ground, on a broker of its own, is killed
// (SIGKILL) while the second wave's commands are in flight, and started
// again on its data directory: it resumes the rollout from its record,
// and no drone gets a second command.
func TestGroundKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "dronectl")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/dronectl").CombinedOutput(); err != nil {
		t.Fatalf("build dronectl: %v\n%s", err, out)
	}
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	pub, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "ground.key")
	if err := command.WritePrivateKey(key, priv); err != nil {
		t.Fatal(err)
	}
	sw, err := swarm.Start(ctx, swarm.Config{Broker: b.URL(), N: 20, Dir: t.TempDir(), Image: simV1,
		Keys: map[string]ed25519.PublicKey{command.KeyID(pub): pub}, Sim: swarm.Sim{Pull: 300 * time.Millisecond, Phase: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	logs := &lockedBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("the grounds' logs:\n%s", logs.tail(20000))
		}
	}()
	run := func() (*rig.GroundStation, *web.Client) {
		g, err := rig.StartGround(ctx, rig.GroundConfig{Bin: bin, Dir: filepath.Join(dir, "data"), KeyFile: key, Broker: b.URL(), Logs: logs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Stop() })
		return g, &web.Client{URL: g.URL}
	}
	g, c := run()
	waves, _ := rollout.ParseWaves("2,50%,100%")
	rec, err := c.StartRollout(ctx, rollout.Spec{Image: simV2, All: true, Waves: waves})
	if err != nil {
		t.Fatal(err)
	}
	for rec.Wave != 1 || rec.Counts(1).InProgress == 0 {
		if !rec.State.Live() {
			t.Fatalf("the rollout ended before the second wave was under way: %s", strings.Join(rollout.Lines(rec), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
		if rec, err = c.Rollout(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
	}
	g.Kill()
	t.Logf("killed the ground in wave 2: %s", strings.Join(rollout.Lines(rec), " | "))
	_, c = run()
	rec, err = c.FollowRollout(ctx, rec.ID, 200*time.Millisecond, func(rollout.Record) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Succeeded() {
		t.Fatalf("after the restart: %s", strings.Join(rollout.Lines(rec), "\n"))
	}
	if st := sw.Stats(); st.Duplicates != 0 || st.Redelivered != 0 || st.Commands != 20 {
		t.Errorf("swarm %+v: want each of the 20 drones one command, once", st)
	}
	for i, d := range sw.Drones() {
		if got := sw.Received(i); len(got) != 1 || got[0] != rollout.CommandID(rec.ID, "u", d) {
			t.Errorf("%s received %v", d, got)
		}
	}
}
