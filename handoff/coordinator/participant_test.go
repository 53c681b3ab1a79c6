package coordinator_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/handofftest"
	"github.com/skyswap/skyswap/hw/lease"
)

// TestLateJoin proves that a candidate started while an owner is flying
// hydrates from the frame stream: right after NewParticipant it holds the
// owner's newest kept frame (LastFrame; the owner's loop is stalled so no
// live frame can stand in for it), its first Tick carries that frame's
// state, and once the owner resumes it follows the live frames, syncs and
// never writes.
func TestLateJoin(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	waitFor(t, 10*time.Second, "the owner writes 300 ticks", func() bool { return len(f.ledger.Ticks("a")) >= 300 })

	// Stall the owner so that the stream's last frame is the newest frame.
	owner.Loop.Pause()
	nc := f.bus.Connect("b")
	ticks := f.ledger.Ticks("a")
	newest := ticks[len(ticks)-1]
	var last *handoff.Frame
	waitFor(t, 5*time.Second, "the stream holds the owner's newest frame", func() bool {
		data, err := handoff.LastFrame(context.Background(), nc, testApp)
		if err != nil || data == nil {
			t.Fatalf("LastFrame = %q, %v; want the owner's newest frame", data, err)
		}
		if last, err = handoff.DecodeFrame(data); err != nil {
			t.Fatal(err)
		}
		return last.Tick == newest
	})

	cand, err := handoff.NewParticipant(context.Background(), nc, handofftest.Model{}, f.cfg("b", handoff.RoleCandidate, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cand.Close)
	if s := cand.Status(); s.LastTick != last.Tick || s.Role != handoff.RoleCandidate || s.Synced {
		t.Fatalf("status right after joining = %+v; want last_tick %d from the stream, candidate, not synced", s, last.Tick)
	}
	d := cand.Tick(last.Tick + 1)
	if d.Hydrate == nil || d.Write || d.Retire {
		t.Fatalf("first Tick = %+v; want Hydrate without Write", d)
	}
	var st handofftest.State
	if err := json.Unmarshal(d.Hydrate, &st); err != nil {
		t.Fatal(err)
	}
	if want := owner.Loop.State(); st != want {
		t.Fatalf("hydrated state %+v; the owner's state is %+v", st, want)
	}

	// Live: the owner resumes, the candidate runs its own loop.
	owner.Loop.Resume()
	loop := handofftest.StartLoop(cand, "b", testPeriod, f.ledger)
	t.Cleanup(loop.Kill)
	took := waitFor(t, 8*time.Second, "the late candidate syncs", func() bool { return cand.Status().Synced })
	s := cand.Status()
	if s.LastTick <= last.Tick {
		t.Fatalf("last tick %d did not advance past %d", s.LastTick, last.Tick)
	}
	hydrated := 0
	for _, d := range loop.Decisions() {
		if d.Hydrated {
			hydrated++
		}
	}
	if hydrated == 0 {
		t.Fatal("the candidate's loop never hydrated from a live frame")
	}
	if ws := f.ledger.Ticks("b"); len(ws) != 0 {
		t.Fatalf("the candidate wrote ticks %v", ws)
	}
	t.Logf("synced %v after the owner resumed; streak %d, lag %.2f ms, %d of %d loop ticks hydrated, gaps %d",
		took, s.Streak, s.LagMs, hydrated, len(loop.Decisions()), s.Gaps)
}

// TestMalformedIgnored proves that garbage on the frames subject and
// garbage or unknown requests on the control subjects are counted in
// Status().Malformed and refused, while the owner keeps writing every tick
// and the candidate keeps (or regains) sync. Refusals that are not malformed
// (retire to the owner, handover to a candidate) are not counted.
func TestMalformedIgnored(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	cand := f.start(f.cfg("b", handoff.RoleCandidate, 0), nil)
	waitFor(t, 8*time.Second, "the candidate syncs", func() bool { return cand.P.Status().Synced })

	nc := f.bus.Connect("vandal")
	sub := handoff.SubjectsFor(testApp)
	bad := func(change func(*handoff.Frame)) []byte {
		fr := handofftest.Frame("a", 1, 1, currentTick(), testPeriod, 0, nil)
		change(&fr)
		return mustJSON(t, fr)
	}
	frames := [][]byte{
		[]byte("garbage"),
		{0xff, 0x00, 0x7b},
		[]byte("{}"),
		[]byte("[]"),
		[]byte(`{"schema":"handofftest.state/1","instance":"a","epoch":"1"}`),
		bad(func(fr *handoff.Frame) { fr.Epoch = 0 }),
		bad(func(fr *handoff.Frame) { fr.Out = nil }),
		bad(func(fr *handoff.Frame) {
			fr.Handover = &handoff.Handover{Tick: fr.Tick + 5, To: "b", Epoch: 1, Fallback: 2}
		}),
	}
	m0a, m0b := owner.P.Status().Malformed, cand.P.Status().Malformed
	for _, b := range frames {
		if err := nc.Publish(sub.Frames(), b); err != nil {
			t.Fatal(err)
		}
	}
	n := uint64(len(frames))
	waitFor(t, 5*time.Second, "both count the malformed frames", func() bool {
		return owner.P.Status().Malformed == m0a+n && cand.P.Status().Malformed == m0b+n
	})

	far := currentTick() + 100000
	for _, tc := range []struct {
		name, to string
		data     []byte
		errHas   string
		counted  bool
	}{
		{"not json to the owner", "a", []byte("not json"), "malformed", true},
		{"not json to the candidate", "b", []byte{0xff, 0xfe}, "malformed", true},
		{"unknown op", "a", []byte(`{"op":"dance"}`), "unknown op", true},
		{"empty op", "b", []byte(`{}`), "unknown op", true},
		{"handover without a handover", "a", []byte(`{"op":"handover"}`), "malformed", true},
		{"handover to itself", "a", mustJSON(t, handoff.Control{Op: "handover", Handover: &handoff.Handover{Tick: far, To: "a", Epoch: 2, Fallback: 3}}), "malformed", true},
		{"handover to nobody", "a", mustJSON(t, handoff.Control{Op: "handover", Handover: &handoff.Handover{Tick: far, Epoch: 2, Fallback: 3}}), "malformed", true},
		{"retire the owner", "a", []byte(`{"op":"retire"}`), "cannot retire", false},
		{"handover asked of a candidate", "b", mustJSON(t, handoff.Control{Op: "handover", Handover: &handoff.Handover{Tick: far, To: "c", Epoch: 2, Fallback: 3}}), "not the owner", false},
		{"expect asked of the owner", "a", mustJSON(t, handoff.Control{Op: "expect", Handover: &handoff.Handover{Tick: far, To: "a", Epoch: 2, Fallback: 3}, From: 1}), "only a candidate or a standby", false},
		{"expect for another instance", "b", mustJSON(t, handoff.Control{Op: "expect", Handover: &handoff.Handover{Tick: far, To: "c", Epoch: 2, Fallback: 3}, From: 1}), "malformed", true},
		{"expect from no epoch", "b", mustJSON(t, handoff.Control{Op: "expect", Handover: &handoff.Handover{Tick: far, To: "b", Epoch: 2, Fallback: 3}}), "malformed", true},
		{"expect from a newer epoch", "b", mustJSON(t, handoff.Control{Op: "expect", Handover: &handoff.Handover{Tick: far, To: "b", Epoch: 2, Fallback: 3}, From: 2}), "malformed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := owner.P
			if tc.to == "b" {
				p = cand.P
			}
			before := p.Status().Malformed
			r := request(t, nc, tc.to, tc.data)
			if r.OK || !strings.Contains(r.Error, tc.errHas) {
				t.Fatalf("reply %+v; want refused with %q", r, tc.errHas)
			}
			want := before
			if tc.counted {
				want++
			}
			if got := p.Status().Malformed; got != want {
				t.Fatalf("malformed count %d, want %d", got, want)
			}
		})
	}

	// Both keep working: the owner writes on, at its epoch, without a
	// pending hand-over; the candidate is (again) synced and never wrote.
	checkOwnerWroteEveryTick(t, f, owner, currentTick(), 100)
	if s := owner.P.Status(); s.Role != handoff.RoleOwner || s.Epoch != 1 {
		t.Fatalf("owner status %+v", s)
	}
	waitFor(t, 5*time.Second, "the candidate is synced", func() bool { return cand.P.Status().Synced })
	if ws := f.ledger.Ticks("b"); len(ws) != 0 {
		t.Fatalf("the candidate wrote ticks %v", ws)
	}
	if fr := lastFrame(t, nc); fr.Handover != nil || fr.Instance != "a" {
		t.Fatalf("newest frame %+v; want the owner's, without a hand-over", fr)
	}
}

// TestIncompatibleSchema proves that a candidate that does not accept the
// owner's schema counts every owner frame in Status().Incompatible, never
// hydrates nor syncs, and that the coordinator, not told about the schemas
// up front, aborts at the sync timeout naming the incompatible frames while
// the owner flies on untouched.
func TestIncompatibleSchema(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	f.candidates(nil, func(c *handoff.ParticipantConfig) {
		c.Schema, c.Accepts = "handofftest.state/2", []string{"handofftest.state/2"}
	})
	c := f.coordinator()
	res, err := c.Run(context.Background(), coordinator.Plan{Image: "test", Owner: "a", Candidate: "b", SyncTimeout: time.Second})
	if err == nil || res.Outcome != report.OutcomeAborted {
		t.Fatalf("Run = %+v, %v; want aborted", res, err)
	}
	if !strings.Contains(res.Reason, "incompatible frames") {
		t.Fatalf("reason %q does not name the incompatible frames", res.Reason)
	}
	cand := f.instance("b")
	s := cand.P.Status()
	// One second of frames at 400 Hz; allow for a slow machine.
	if s.Incompatible < 50 || s.Synced || s.LastTick != 0 || s.Streak != 0 {
		t.Fatalf("candidate status %+v; want many incompatible frames, not synced, no frame held", s)
	}
	for _, d := range cand.Loop.Decisions() {
		if d.Hydrated || d.Write {
			t.Fatalf("the incompatible candidate hydrated or wrote at tick %d: %+v", d.Tick, d)
		}
	}
	if stopped, _ := f.rt.Stopped("b"); !stopped {
		t.Fatal("the aborted candidate was not stopped")
	}
	if s := owner.P.Status(); s.Role != handoff.RoleOwner || s.Epoch != 1 {
		t.Fatalf("owner status %+v", s)
	}
	t.Logf("reason: %s", res.Reason)
}

// TestStaleEpochIgnored proves that a standby ignores frames whose epoch is
// below the highest it has seen (a fenced instance that has not noticed):
// they neither replace its newest frame (so they cannot feed it a state or
// a hand-over to act on) nor push its last tick ahead (so they cannot hold
// off its take-back), and they are not miscounted as malformed or
// incompatible. It drives Tick by hand, so it does not depend on timing.
func TestStaleEpochIgnored(t *testing.T) {
	f := newFixture(t)
	a, nc, fl, clock := f.byHand("a", handoff.RoleOwner, 1)
	clock.Store(at(100))
	if d := a.Tick(100); !d.Write || d.Epoch != 1 {
		t.Fatalf("owner Tick(100) = %+v", d)
	}
	h := handoff.Handover{Tick: 110, To: "b", Epoch: 2, Fallback: 3}
	if r := request(t, nc, "a", mustJSON(t, handoff.Control{Op: "handover", Handover: &h})); !r.OK {
		t.Fatalf("handover refused: %+v", r)
	}
	clock.Store(at(110))
	if d := a.Tick(110); d.Write || a.Role() != handoff.RoleStandby {
		t.Fatalf("Tick(110) = %+v, role %s; want a standby that does not write", d, a.Role())
	}
	if b, _ := fl.Beat(); b.Released != 1 {
		t.Fatalf("the owner handed over without releasing epoch 1 at the lease: %+v", b)
	}

	pub := f.bus.Connect("others")
	sub := handoff.SubjectsFor(testApp)
	send := func(fr handoff.Frame) {
		t.Helper()
		if err := pub.Publish(sub.Frames(), mustJSON(t, fr)); err != nil {
			t.Fatal(err)
		}
	}
	// The new owner b at epoch 2.
	send(handofftest.Frame("b", 2, 1, 110, testPeriod, 10, nil))
	fl.set(lease.Beat{Highest: 2, Epoch: 2, T: at(110), Released: 1})
	waitFor(t, 5*time.Second, "the standby sees b's frame", func() bool { return a.Status().LastTick == 110 })

	for _, fr := range []struct {
		name string
		f    handoff.Frame
	}{
		{"far ahead (would pass for a live owner)", handofftest.Frame("z", 1, 50, 5000, testPeriod, 99, nil)},
		{"hand-over to the standby", handofftest.Frame("z", 1, 51, 111, testPeriod, 99, &handoff.Handover{Tick: 112, To: "a", Epoch: 8, Fallback: 9})},
		{"next tick with another state", handofftest.Frame("z", 1, 52, 111, testPeriod, 99, nil)},
		{"from the new owner's name at the old epoch", handofftest.Frame("b", 1, 2, 111, testPeriod, 99, nil)},
	} {
		t.Logf("stale frame: %s", fr.name)
		send(fr.f)
	}
	// A current frame after them: once it is seen, the stale ones (sent
	// earlier on the same connection) have been handled.
	send(handofftest.Frame("b", 2, 2, 111, testPeriod, 11, nil))
	fl.set(lease.Beat{Highest: 2, Epoch: 2, T: at(111), Writes: 2, Released: 1})
	waitFor(t, 5*time.Second, "the standby sees b's next frame", func() bool { return a.Status().LastTick == 111 })

	s := a.Status()
	if s.Malformed != 0 || s.Incompatible != 0 || s.Gaps != 0 {
		t.Fatalf("status %+v: stale frames miscounted", s)
	}
	clock.Store(at(112))
	d := a.Tick(112)
	if d.Write {
		t.Fatalf("Tick(112) = %+v: the standby acted on a stale hand-over", d)
	}
	var st handofftest.State
	if err := json.Unmarshal(d.Hydrate, &st); err != nil || st.X != 12 || d.HydrateTick != 111 {
		t.Fatalf("Tick(112) hydrates %s from tick %d (%v); want b's state after tick 111, x=12", d.Hydrate, d.HydrateTick, err)
	}
	// b falls silent after 111: the standby takes back once the lease has
	// seen no write for the holder timeout, the stale frame at tick 5000
	// notwithstanding.
	back := 111 + int64(lease.HolderTimeout/testPeriod)
	for tick := int64(113); tick < back; tick++ {
		clock.Store(at(tick))
		if d := a.Tick(tick); d.Write {
			t.Fatalf("Tick(%d) = %+v: took back %v after b's last write, before the holder timeout", tick, d, time.Duration(at(tick)-at(111)))
		}
	}
	clock.Store(at(back))
	if d := a.Tick(back); !d.Write || d.Epoch != 3 {
		t.Fatalf("Tick(%d) = %+v; want a take-back at the fallback epoch 3", back, d)
	}
	if s := a.Status(); !s.TakenBack || s.Role != handoff.RoleOwner || s.Epoch != 3 {
		t.Fatalf("status after the take-back %+v", s)
	}
}

// TestExpectedHandoverNeedsNoFrames proves that a candidate told by the
// coordinator to expect a hand-over takes over at its tick once the lease
// shows the owner released, though no frame stamped with the hand-over
// ever reached it (a loaded machine delayed them 50 ms while the owner,
// asked late, released 24 ms after accepting: nobody drove for 44 ms).
// Without the word it does not take over: the frames were its only news.
// It drives Tick by hand, so it does not depend on timing.
func TestExpectedHandoverNeedsNoFrames(t *testing.T) {
	f := newFixture(t)
	b, nc, fl, clock := f.byHand("b", handoff.RoleCandidate, 0)

	// The owner a at epoch 1 flies up to tick 109; its frames carry no
	// hand-over (the stamped ones are still on their way).
	pub := f.bus.Connect("a")
	if err := pub.Publish(handoff.SubjectsFor(testApp).Frames(), mustJSON(t, handofftest.Frame("a", 1, 9, 109, testPeriod, 9, nil))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the candidate sees a's frame", func() bool { return b.Status().LastTick == 109 })
	fl.set(lease.Beat{Highest: 1, Epoch: 1, T: at(109), Writes: 109, Released: 1})

	clock.Store(at(110))
	if d := b.Tick(110); d.Write || d.HydrateTick != 109 {
		t.Fatalf("Tick(110) = %+v; want no write (nobody told it of a hand-over), and a's state after tick 109 to follow", d)
	}
	h := handoff.Handover{Tick: 111, To: "b", Epoch: 2, Fallback: 3}
	if r := request(t, nc, "b", mustJSON(t, handoff.Control{Op: "expect", Handover: &h, From: 1})); !r.OK {
		t.Fatalf("expect refused: %+v", r)
	}
	clock.Store(at(111))
	d := b.Tick(111)
	if !d.Write || d.Epoch != 2 || b.Role() != handoff.RoleOwner {
		t.Fatalf("Tick(111) = %+v, role %s; want a take-over at epoch 2", d, b.Role())
	}
	if d.Hydrate != nil {
		t.Fatalf("Tick(111) hydrates from tick %d; want it to drive from its own state, stepped since tick 109", d.HydrateTick)
	}
}

// byHand starts a participant whose clock and lease are the test's, on its
// own connection: the test drives its ticks by hand.
func (f *fixture) byHand(instance string, role handoff.Role, epoch uint64) (*handoff.Participant, *nats.Conn, *fakeLease, *atomic.Int64) {
	f.t.Helper()
	nc := f.bus.Connect(instance)
	clock, fl := &atomic.Int64{}, &fakeLease{}
	cfg := f.cfg(instance, role, epoch)
	cfg.Lease, cfg.Clock = fl, clock.Load
	p, err := handoff.NewParticipant(context.Background(), nc, handofftest.Model{}, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(p.Close)
	return p, nc, fl, clock
}

// at is tick's time on the test's grid.
func at(tick int64) int64 { return tick * int64(testPeriod) }

// fakeLease is a lease the test sets by hand.
type fakeLease struct {
	mu sync.Mutex
	b  lease.Beat
}

func (l *fakeLease) Beat() (lease.Beat, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b, nil
}

func (l *fakeLease) Release(epoch uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Released = max(l.b.Released, epoch)
	return nil
}

func (l *fakeLease) set(b lease.Beat) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = b
}

// checkOwnerWroteEveryTick waits until owner's loop has run n ticks past
// from, then fails unless every tick from from on that the loop has reached
// has exactly one write, by owner, except ticks its loop skipped.
func checkOwnerWroteEveryTick(t *testing.T, f *fixture, owner *handofftest.Instance, from int64, n int) {
	t.Helper()
	lastDecided := func() int64 {
		ds := owner.Loop.Decisions()
		if len(ds) == 0 {
			return 0
		}
		return ds[len(ds)-1].Tick
	}
	waitFor(t, 5*time.Second, "the owner's loop moves on", func() bool { return lastDecided() >= from+int64(n) })
	to := lastDecided()
	skipped := map[int64]bool{}
	for _, s := range owner.Loop.Skipped() {
		skipped[s] = true
	}
	for tick := from; tick <= to; tick++ {
		ws := f.ledger.At(tick)
		switch {
		case len(ws) > 1:
			t.Fatalf("tick %d written %d times: %+v", tick, len(ws), ws)
		case len(ws) == 0 && !skipped[tick]:
			t.Fatalf("tick %d not written, and the owner's loop did not skip it", tick)
		case len(ws) == 1 && ws[0].Instance != owner.Name:
			t.Fatalf("tick %d written by %+v", tick, ws[0])
		}
	}
}

// lastFrame is the newest frame kept in the stream.
func lastFrame(t *testing.T, nc *nats.Conn) *handoff.Frame {
	t.Helper()
	data, err := handoff.LastFrame(context.Background(), nc, testApp)
	if err != nil || data == nil {
		t.Fatalf("LastFrame = %q, %v", data, err)
	}
	fr, err := handoff.DecodeFrame(data)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// TestBlockedLogNeverHoldsTheLoop proves that an owner whose log writer
// blocks (stdout a pipe nobody drains) still answers a hand-over request
// and writes every tick: the participant logs events off its lock and off
// the control loop. The event is written once the writer drains, with the
// time it happened.
func TestBlockedLogNeverHoldsTheLoop(t *testing.T) {
	f := newFixture(t)
	w := &gatedWriter{open: make(chan struct{})}
	cfg := f.cfg("a", handoff.RoleOwner, 1)
	cfg.Log = slog.New(slog.NewJSONHandler(w, nil))
	owner := f.start(cfg, nil)
	var once sync.Once
	drain := func() { once.Do(func() { close(w.open) }) }
	t.Cleanup(drain) // before the owner stops: Close writes what is left
	waitFor(t, 5*time.Second, "the owner writes", func() bool { return len(f.ledger.Ticks("a")) >= 20 })

	nc := f.bus.Connect("coordinator")
	accepted := time.Now()
	h := &handoff.Handover{Tick: currentTick() + 100000, To: "b", Epoch: 2, Fallback: 3}
	if r := request(t, nc, "a", mustJSON(t, handoff.Control{Op: "handover", Handover: h})); !r.OK {
		t.Fatalf("hand-over refused: %+v", r)
	}
	checkOwnerWroteEveryTick(t, f, owner, currentTick(), 100)
	if !w.blocked.Load() {
		t.Fatal("nothing was logged: the test did not block the log writer")
	}

	drained := time.Now()
	drain()
	var rec struct {
		Time time.Time `json:"time"`
		Msg  string    `json:"msg"`
	}
	waitFor(t, 5*time.Second, "the event is logged", func() bool {
		for line := range strings.Lines(w.String()) {
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "handoff: hand-over accepted" {
				return true
			}
		}
		return false
	})
	if rec.Time.Before(accepted) || !rec.Time.Before(drained) {
		t.Errorf("logged at %v; the hand-over was accepted after %v and before %v", rec.Time, accepted, drained)
	}
}

// gatedWriter blocks every write until open is closed.
type gatedWriter struct {
	open    chan struct{}
	blocked atomic.Bool
	syncBuffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	select {
	case <-g.open:
	default:
		g.blocked.Store(true)
		<-g.open
	}
	return g.syncBuffer.Write(p)
}
