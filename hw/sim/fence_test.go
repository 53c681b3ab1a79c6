package sim_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/motors"
	"github.com/skyswap/skyswap/hw/sim"
)

// TestFencingThroughSocket proves the virtual motor controller fences
// writers by lease epoch across real socket clients, as the hand-over relies
// on: the holder of epoch 1 drives the motors until a client with epoch 2
// writes once after v1 released it (before, the live holder's lease refuses
// v2 with lease.ErrHeld), after which every write of epoch 1 (and any write of epoch 0,
// which holds no lease) is refused with lease.ErrStale, leaves the pulses
// untouched, and is counted exactly once by the referee, while reads stay
// open to everyone and the refused clients' connections keep working.
func TestFencingThroughSocket(t *testing.T) {
	d := sim.New(sim.Config{})
	run(t, d)
	path := serve(t, d)
	ctx := testCtx(t, 10*time.Second)

	v1 := dial(t, path, "v1")
	v1.SetEpoch(1)
	m1, err := motors.Init(ctx, v1, &motors.Opts{ArmTime: time.Millisecond})
	if err != nil {
		t.Fatalf("v1 Init: %v", err)
	}
	for range 3 {
		if err := m1.Set([motors.N]float64{0.3, 0.3, 0.3, 0.3}); err != nil {
			t.Fatalf("v1 Set before the hand-over: %v", err)
		}
	}

	v2 := dial(t, path, "v2")
	v2.SetEpoch(2)
	m2, err := motors.Attach(v2, nil)
	if err != nil {
		t.Fatalf("v2 Attach: %v", err)
	}
	// v1 is alive: v2 cannot take the motors from it.
	if err := m2.Set([motors.N]float64{0.6, 0.6, 0.6, 0.6}); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("v2's write while v1 holds the lease: %v, want lease.ErrHeld", err)
	}
	// v1 hands over: it releases epoch 1, and v2's first write fences it.
	if err := v1.Release(1); err != nil {
		t.Fatal(err)
	}
	if err := m2.Set([motors.N]float64{0.6, 0.6, 0.6, 0.6}); err != nil {
		t.Fatalf("v2's first write (epoch 2) refused: %v", err)
	}
	if got := d.Truth().Epoch; got != 2 {
		t.Fatalf("fence epoch %d after v2's write, want 2", got)
	}

	rogue := dial(t, path, "rogue") // epoch 0: no lease
	mr, err := motors.Attach(rogue, nil)
	if err != nil {
		t.Fatalf("rogue Attach (reads only): %v", err)
	}

	reader, err := motors.Attach(d.Bus("reader"), nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := reader.Read()
	if err != nil {
		t.Fatal(err)
	}

	refusals := []struct {
		name   string
		writer string
		write  func() error
	}{
		{"v1 Set after fencing", "v1", func() error { return m1.Set([motors.N]float64{0.9, 0.9, 0.9, 0.9}) }},
		{"v1 Stop after fencing", "v1", m1.Stop},
		{"v1 raw MODE1 sleep", "v1", func() error { return v1.Tx(0x40, []byte{0x00, 0x31}, nil) }},
		{"rogue Set at epoch 0", "rogue", func() error { return mr.Set([motors.N]float64{1, 1, 1, 1}) }},
		{"rogue ALL_LED full off at epoch 0", "rogue", func() error { return rogue.Tx(0x40, []byte{0xFA, 0, 0, 0, 0x10}, nil) }},
	}
	for _, r := range refusals {
		err := r.write()
		if !errors.Is(err, lease.ErrStale) {
			t.Fatalf("%s: err = %v, want lease.ErrStale", r.name, err)
		}
	}

	after, err := reader.Read()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("refused writes changed the throttles: %v before, %v after", before, after)
	}
	for i := range after {
		if math.Abs(after[i]-0.6) > 0.002 {
			t.Fatalf("throttles %v, want v2's 0.6", after)
		}
	}

	// The refused clients can still read: the fence guards writes only.
	for name, m := range map[string]*motors.Dev{"v1": m1, "rogue": mr} {
		if _, err := m.Read(); err != nil {
			t.Fatalf("%s read after its writes were refused: %v", name, err)
		}
	}

	rep := d.Report(0, 0)
	if rep.StaleRefused != len(refusals)+1 { // and v2's while v1 held the lease
		t.Fatalf("referee counts %d refused writes, want exactly %d", rep.StaleRefused, len(refusals)+1)
	}
	if got := d.Truth().Epoch; got != 2 {
		t.Fatalf("fence epoch %d after the refusals, want 2", got)
	}
	if len(rep.Writers) != 2 || rep.Writers[0] != "v1" || rep.Writers[1] != "v2" {
		t.Fatalf("motor updates by %v, want v1 then v2 only", rep.Writers)
	}

	// Each refusal is logged with its writer, its epoch and the pulses
	// it left in place.
	var refused []int
	ws := d.Writes(0, 0)
	var v2Pulses [4]uint16
	held := 0
	for i, w := range ws {
		switch {
		case w.Writer == "v2" && !w.Refused:
			v2Pulses = w.Pulses
		case w.Refused && v2Pulses == [4]uint16{}:
			held++ // v2's, before v1 released
			if w.Writer != "v2" || w.Epoch != 2 {
				t.Errorf("refusal before the hand-over logged as %+v, want v2's at epoch 2", w)
			}
		case w.Refused:
			refused = append(refused, i)
		}
	}
	if held != 1 {
		t.Fatalf("%d refused writes before the hand-over, want v2's one", held)
	}
	if len(refused) != len(refusals) {
		t.Fatalf("%d refused writes in the log, want %d", len(refused), len(refusals))
	}
	for k, i := range refused {
		w := ws[i]
		wantEpoch := uint64(1)
		if refusals[k].writer == "rogue" {
			wantEpoch = 0
		}
		if w.Writer != refusals[k].writer || w.Epoch != wantEpoch || w.Update || w.Pulses != v2Pulses {
			t.Errorf("refusal %d (%s) logged as %+v, want writer %s, epoch %d, no update, pulses %v", k, refusals[k].name, w, refusals[k].writer, wantEpoch, v2Pulses)
		}
	}
	t.Logf("v2 pulses %v µs held through %d refused writes", v2Pulses, len(refusals))
}

// TestLeaseBeatThroughSocket: every accepted motor write stamps the lease's
// heartbeat where it reaches the virtual chip, a refused one does not, and
// a client that never writes (a standby, the agent) reads it over its own
// connection. A release is logged, so the referee tells a planned cut-over
// from a take-back.
func TestLeaseBeatThroughSocket(t *testing.T) {
	d := sim.New(sim.Config{})
	run(t, d)
	path := serve(t, d)
	ctx := testCtx(t, 10*time.Second)

	v1 := dial(t, path, "v1")
	v1.SetEpoch(1)
	m1, err := motors.Init(ctx, v1, &motors.Opts{ArmTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	watcher := dial(t, path, "agent")
	b0, err := watcher.Beat()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := m1.Set([motors.N]float64{0.3, 0.3, 0.3, 0.3}); err != nil {
			t.Fatal(err)
		}
	}
	b1, _ := watcher.Beat()
	if b1.Writes != b0.Writes+5 || b1.Epoch != 1 || b1.T <= b0.T || b1.Highest != 1 {
		t.Fatalf("beat %+v after five writes (before: %+v)", b1, b0)
	}
	if err := v1.Release(1); err != nil {
		t.Fatal(err)
	}
	v2 := dial(t, path, "v2")
	v2.SetEpoch(2)
	m2, err := motors.Attach(v2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := m2.Set([motors.N]float64{0.4, 0.4, 0.4, 0.4}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m1.Set([motors.N]float64{0.3, 0.3, 0.3, 0.3}); !errors.Is(err, lease.ErrStale) {
		t.Fatalf("v1 after the cut-over: %v, want stale", err)
	}
	b2, _ := watcher.Beat()
	if b2.Writes != b1.Writes+3 || b2.Epoch != 2 || b2.Released != 1 {
		t.Fatalf("beat %+v: want 3 more writes at epoch 2 and epoch 1 released", b2)
	}
	// v2 falls silent; v1's successor takes back without a release.
	time.Sleep(lease.HolderTimeout + 10*time.Millisecond)
	v3 := dial(t, path, "v3")
	v3.SetEpoch(3)
	m3, err := motors.Attach(v3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m3.Set([motors.N]float64{0.5, 0.5, 0.5, 0.5}); err != nil {
		t.Fatal(err)
	}
	rep := d.Report(0, 0)
	if rep.WriterSwitches != 2 || rep.Takebacks != 1 || rep.FalseTakebacks != 0 {
		t.Fatalf("switches %d takebacks %d false %d; want 2, 1 (v2 -> v3, unreleased), 0 (v2 was silent)",
			rep.WriterSwitches, rep.Takebacks, rep.FalseTakebacks)
	}
}
