package coordinator_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/handofftest"
	"github.com/skyswap/skyswap/hw/lease"
)

// TestHandoverAtTickBoundary proves the hand-over itself, in process: the
// owner and the candidate run their own loops on the tick grid and write to
// a fenced ledger; the coordinator prepares, shadows, cuts over, holds
// probation and commits. Every tick of the run has exactly one writer (a tick
// may be missing only where the responsible loop overran and skipped it;
// never two writers), the candidate's first tick is the cut-over tick, the
// owner's last is the one before, the candidate's first output is computed
// from the owner's state after its last tick, the owner released its epoch
// at the lease before the candidate's first write, and the old owner
// retires: its loop ends on Decision.Retire.
func TestHandoverAtTickBoundary(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	f.candidates(nil, nil)
	c := f.coordinator()
	var ev events
	onEvent := ev.add
	ctl := spyControl(t, f)

	res, err := c.Run(context.Background(), coordinator.Plan{Image: "test", OnEvent: onEvent,
		Owner: "a", Candidate: "b", Probation: 300 * time.Millisecond, SyncTimeout: 5 * time.Second,
	})
	if err != nil || res.Outcome != report.OutcomeCommitted {
		t.Fatalf("Run = %+v, %v; want committed", res, err)
	}
	// The candidate heard of the hand-over before the owner was asked
	// for it: the owner never stops for an instance that does not know.
	h := &handoff.Handover{Tick: res.CutoverTick, To: "b", Epoch: 2, Fallback: 3}
	want := []sentControl{
		{To: "b", Control: handoff.Control{Op: "expect", Handover: h, From: 1}},
		{To: "a", Control: handoff.Control{Op: "handover", Handover: h}},
		{To: "a", Control: handoff.Control{Op: "retire"}},
	}
	if got := ctl.sent(len(want)); !reflect.DeepEqual(got, want) {
		t.Fatalf("control requests %+v; want %+v", got, want)
	}
	if s := owner.P.Status(); s.TakenBack {
		t.Fatalf("the coordinator committed to b although the standby a had taken back (status %+v): "+
			"it retired nobody and stopped the instance that was driving", s)
	}
	if res.Owner != "b" || res.Epoch != 2 || res.CutoverTick == 0 || res.TakenBack {
		t.Fatalf("result %+v", res)
	}
	phases := []string{"prepare", "shadow", "synced", "cutover", "probation", "commit"}
	if got := ev.phases(); !slices.Equal(got, phases) {
		t.Fatalf("phases %v, want %v", got, phases)
	}

	// The old owner was retired, then stopped: its loop ended on Retire.
	if stopped, exit := f.rt.Stopped("a"); !stopped || exit != handofftest.ExitRetired {
		t.Fatalf("old owner stopped %v, exit %q; want stopped after retiring", stopped, exit)
	}
	if r := owner.P.Role(); r != handoff.RoleRetired {
		t.Fatalf("old owner's role %s", r)
	}
	cand := f.instance("b")
	sleepTicks(40) // the new owner flies on alone
	cand.Stop()

	T := res.CutoverTick
	ta, tb := f.ledger.Ticks("a"), f.ledger.Ticks("b")
	if len(ta) == 0 || len(tb) == 0 {
		t.Fatalf("owner wrote %d ticks, candidate %d", len(ta), len(tb))
	}
	if last := ta[len(ta)-1]; last >= T {
		t.Fatalf("the owner's last tick is %d; cut-over at %d", last, T)
	}
	if tb[0] < T {
		t.Fatalf("the candidate's first tick is %d; cut-over at %d", tb[0], T)
	}
	checkOneWriter(t, f, ta[0], tb[len(tb)-1], T, f.ledger.ReleasedAt(1), owner, cand)
	if r := f.ledger.Refused(); len(r) != 0 {
		t.Fatalf("the fence refused %d writes: %+v", len(r), r)
	}
	// The candidate starts from the owner's state after its last tick and
	// steps it over the ticks since that its own loop ran (one it skipped
	// has no sample to step on, as the owner's skipped ticks have none).
	before, after := f.ledger.At(ta[len(ta)-1])[0], f.ledger.At(tb[0])[0]
	x, skipped := before.X+1, cand.Loop.Skipped()
	for tick := before.Tick + 1; tick < after.Tick; tick++ {
		if !slices.Contains(skipped, tick) {
			x++
		}
	}
	if before.Epoch != 1 || after.Epoch != 2 || after.X != x {
		t.Fatalf("cut-over: %+v then %+v; want epochs 1 then 2 and the state carried over (x %v)", before, after, x)
	}
	if r := f.ledger.Released(); len(r) == 0 || r[0] != 1 {
		t.Fatalf("released epochs %v; want the owner's 1 released at the cut-over", r)
	}
	t.Logf("start %.1f ms, synced %.0f ms after start, cut-over at tick %d, probation to commit %.0f ms; owner skipped %d ticks, candidate %d",
		res.StartMs, res.SyncMs, T, res.ToCommitMs, len(owner.Loop.Skipped()), len(cand.Loop.Skipped()))
}

// checkOneWriter fails unless every tick in [from, to] has exactly one
// write: by owner before cut, by cand from cut on. A tick without a write is
// allowed only if the loop responsible for it skipped it, or, from cut on,
// if the owner released its epoch (at released) only after the tick was
// due: the candidate waits half a tick for the release and then lets the
// tick go rather than risk two writers in it (a loaded machine delays the
// owner's last tick so).
func checkOneWriter(t *testing.T, f *fixture, from, to, cut, released int64, owner, cand *handofftest.Instance) {
	t.Helper()
	if d := f.ledger.Doubles(); len(d) != 0 {
		t.Fatalf("ticks with two writers: %v", d)
	}
	skippedA, skippedB := owner.Loop.Skipped(), cand.Loop.Skipped()
	for tick := from; tick <= to; tick++ {
		who, skipped := owner, skippedA
		if tick >= cut {
			who, skipped = cand, skippedB
		}
		ws := f.ledger.At(tick)
		lateRelease := tick >= cut && released > tick*int64(testPeriod)
		switch {
		case len(ws) == 0 && !slices.Contains(skipped, tick) && !lateRelease:
			t.Fatalf("tick %d has no writer, %s's loop did not skip it, and the owner had released by then", tick, who.Name)
		case len(ws) == 1 && ws[0].Instance != who.Name:
			t.Fatalf("tick %d written by %s, want %s", tick, ws[0].Instance, who.Name)
		}
	}
}

// TestCandidateKilledInProbation proves the standby's own take-back: the
// candidate crashes right after the cut-over (its loop ends and its
// connection drops when probation begins); the standby sees at the lease
// that the writes stopped and writes at the fallback epoch within the
// holder timeout and two ticks of the candidate's last write (plus any
// ticks its own loop skipped), with the state it kept stepping; the
// coordinator reports a revert with TakenBack, and no tick is ever written
// twice.
func TestCandidateKilledInProbation(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	f.candidates(nil, nil)
	c := f.coordinator()
	var ev events
	onEvent := func(e handoff.Event) {
		ev.add(e)
		if e.Phase == "probation" {
			f.instance("b").Kill()
		}
	}
	res, err := c.Run(context.Background(), coordinator.Plan{Image: "test", OnEvent: onEvent,
		Owner: "a", Candidate: "b", Probation: 2 * time.Second, SyncTimeout: 5 * time.Second,
	})
	if err == nil || res.Outcome != report.OutcomeReverted || !res.TakenBack {
		t.Fatalf("Run = %+v, %v; want reverted, taken back", res, err)
	}
	if res.Owner != "a" || res.Epoch != 3 {
		t.Fatalf("result %+v; want a at the fallback epoch 3", res)
	}
	if s := owner.P.Status(); s.Role != handoff.RoleOwner || s.Epoch != 3 || !s.TakenBack {
		t.Fatalf("standby status %+v; want owner at epoch 3, taken back", s)
	}
	cand := f.instance("b")
	if e := cand.Loop.Exit(); e != handofftest.ExitKilled {
		t.Fatalf("candidate loop exit %q", e)
	}
	checkOwnerWroteEveryTick(t, f, owner, currentTick(), 60)

	tb := f.ledger.Ticks("b")
	if len(tb) == 0 || tb[0] != res.CutoverTick {
		t.Fatalf("candidate ticks %v; cut-over %d", tb, res.CutoverTick)
	}
	lastB := tb[len(tb)-1]
	back := int64(0)
	for _, tick := range f.ledger.Ticks("a") {
		if ws := f.ledger.At(tick); tick > lastB && ws[0].Epoch == 3 {
			back = tick
			break
		}
	}
	if back == 0 {
		t.Fatal("no write at the fallback epoch in the ledger")
	}
	gap := back - lastB
	skipped := owner.Loop.SkippedIn(lastB+1, back)
	holder := int64(lease.HolderTimeout / testPeriod)
	// Not before the holder timeout, in time as the fence judges it (a
	// write may land late in its tick), and within 2 ticks after it.
	if silent := time.Duration(f.ledger.At(back)[0].At - f.ledger.At(lastB)[0].At); silent < lease.HolderTimeout || gap > holder+2+int64(skipped) {
		t.Fatalf("took back at tick %d, %d ticks (%v) after the candidate's last write %d; want after the holder timeout (%v, %d ticks) and within 2 ticks more (+%d skipped)",
			back, gap, silent, lastB, lease.HolderTimeout, holder, skipped)
	}
	if d := f.ledger.Doubles(); len(d) != 0 {
		t.Fatalf("ticks with two writers: %v", d)
	}
	if r := f.ledger.Refused(); len(r) != 0 {
		t.Fatalf("the fence refused %d writes: %+v", len(r), r)
	}
	if a, b := f.ledger.At(back)[0], f.ledger.At(lastB)[0]; skipped == 0 && a.X != b.X+float64(gap) {
		t.Fatalf("take-back state x=%v at tick %d; the candidate had x=%v at %d: the standby did not keep stepping", a.X, back, b.X, lastB)
	}
	if got := ev.phases(); !slices.Equal(got, []string{"prepare", "shadow", "synced", "cutover", "probation", "revert", "done"}) {
		t.Fatalf("phases %v", got)
	}
	t.Logf("candidate wrote ticks %d..%d (%d); standby took back at %d: %d ticks later (%d skipped); reason %q",
		tb[0], lastB, len(tb), back, gap, skipped, res.Reason)
}

// TestAbortLeavesOwnerUntouched proves that an update stopped before the
// cut-over never touches the owner: it keeps writing every tick at its
// epoch, with no hand-over pending, whether the candidate never comes up
// (abort at the sync timeout, the candidate stopped) or its process ends
// (abort at once, when the runtime reports exits), declares schemas the
// owner does not publish (refused with ErrIncompatible before the runtime is
// asked to start anything), or the named owner does not exist.
func TestAbortLeavesOwnerUntouched(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plan    coordinator.Plan
		outcome string
		errIs   error
		reason  string
		phases  []string
		started bool
		exits   bool // the runtime reports the candidate's process ended
	}{
		{
			name:    "candidate exits before reporting",
			plan:    coordinator.Plan{Image: "test", Owner: "a", Candidate: "b", SyncTimeout: time.Minute},
			outcome: report.OutcomeAborted, reason: "exited while shadowing (exit code 1)",
			phases: []string{"prepare", "shadow", "abort"}, started: true, exits: true,
		},
		{
			name:    "candidate never reports",
			plan:    coordinator.Plan{Image: "test", Owner: "a", Candidate: "b", SyncTimeout: time.Second},
			outcome: report.OutcomeAborted, reason: "no sync within",
			phases: []string{"prepare", "shadow", "abort"}, started: true,
		},
		{
			name:    "candidate accepts another schema",
			plan:    coordinator.Plan{Image: "test", Owner: "a", Candidate: "b", Accepts: []string{"other/9"}, SyncTimeout: time.Second},
			outcome: report.OutcomeRefused, errIs: coordinator.ErrIncompatible, reason: "other/9",
			phases: []string{"refused"},
		},
		{
			name:    "no such owner",
			plan:    coordinator.Plan{Image: "test", Owner: "ghost", Candidate: "b", SyncTimeout: time.Second},
			outcome: report.OutcomeRefused, reason: "publishes no frames",
			phases: []string{"refused"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			owner := f.startOwner("a")
			c := f.coordinator() // the runtime's Start does nothing
			if tc.exits {
				c = f.coordinatorOn(exitingRuntime{f.rt})
			}
			var ev events
			tc.plan.OnEvent = ev.add
			from := currentTick()
			res, err := c.Run(context.Background(), tc.plan)
			if err == nil || res.Outcome != tc.outcome || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("Run = %+v, %v; want %s, reason with %q", res, err, tc.outcome, tc.reason)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Fatalf("error %v is not %v", err, tc.errIs)
			}
			if got := ev.phases(); !slices.Equal(got, tc.phases) {
				t.Fatalf("phases %v, want %v", got, tc.phases)
			}
			if got := f.rt.Started("b"); got != tc.started {
				t.Fatalf("runtime started the candidate: %v, want %v (calls %+v)", got, tc.started, f.rt.Calls())
			}
			if stopped, _ := f.rt.Stopped("b"); stopped != tc.started {
				t.Fatalf("runtime stopped the candidate: %v, want %v", stopped, tc.started)
			}
			if stopped, _ := f.rt.Stopped("a"); stopped {
				t.Fatal("the runtime stopped the owner")
			}
			checkOwnerWroteEveryTick(t, f, owner, from, 40)
			if s := owner.P.Status(); s.Role != handoff.RoleOwner || s.Epoch != 1 {
				t.Fatalf("owner status %+v", s)
			}
			if fr := lastFrame(t, f.bus.Connect("check")); fr.Instance != "a" || fr.Epoch != 1 || fr.Handover != nil {
				t.Fatalf("newest frame %+v; want the owner's at epoch 1 without a hand-over", fr)
			}
		})
	}
}

// exitingRuntime reports every instance it started as exited with code 1,
// as a candidate whose process dies at start.
type exitingRuntime struct{ *handofftest.Runtime }

func (r exitingRuntime) Exited(instance string) (string, bool) {
	return "exit code 1", r.Started(instance)
}

// TestOwnerRefusesBadHandover proves that the owner refuses, over its
// control subject, every hand-over it cannot honour (a tick that is not
// ahead of its current tick, epochs that do not grow, no other instance to
// hand to, a second one while one is pending) and a retire, and that a
// refused request changes nothing: it keeps writing every tick at its epoch
// with no hand-over stamped on its frames.
func TestOwnerRefusesBadHandover(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	nc := f.bus.Connect("requester")
	from := currentTick()
	ho := func(tick int64, to string, epoch, fallback uint64) []byte {
		return mustJSON(t, handoff.Control{Op: "handover", Handover: &handoff.Handover{Tick: tick, To: to, Epoch: epoch, Fallback: fallback}})
	}
	// The owner's last written tick is never after its current one, so a
	// hand-over at it or the next tick is not ahead, however the owner's
	// loop is scheduled.
	lastWritten := func() int64 { ts := f.ledger.Ticks("a"); return ts[len(ts)-1] }
	far := func() int64 { return currentTick() + 100000 }
	for _, tc := range []struct {
		name   string
		ctl    func() []byte
		errHas string
	}{
		{"tick in the past", func() []byte { return ho(lastWritten()-100, "b", 2, 3) }, "not ahead"},
		{"tick is the current tick", func() []byte { return ho(lastWritten(), "b", 2, 3) }, "not ahead"},
		{"tick is the next tick", func() []byte { return ho(lastWritten()+1, "b", 2, 3) }, "not ahead"},
		{"epoch not above the owner's", func() []byte { return ho(far(), "b", 1, 3) }, "epochs must grow"},
		{"fallback not above the new epoch", func() []byte { return ho(far(), "b", 2, 2) }, "epochs must grow"},
		{"to itself", func() []byte { return ho(far(), "a", 2, 3) }, "malformed"},
		{"to nobody", func() []byte { return ho(far(), "", 2, 3) }, "malformed"},
		{"retire the owner", func() []byte { return []byte(`{"op":"retire"}`) }, "cannot retire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, nc, "a", tc.ctl())
			if r.OK || !strings.Contains(r.Error, tc.errHas) {
				t.Fatalf("reply %+v; want refused with %q", r, tc.errHas)
			}
		})
	}
	checkOwnerWroteEveryTick(t, f, owner, from, 40)
	if s := owner.P.Status(); s.Role != handoff.RoleOwner || s.Epoch != 1 {
		t.Fatalf("owner status %+v", s)
	}
	if fr := lastFrame(t, nc); fr.Handover != nil {
		t.Fatalf("a refused hand-over was stamped on frame %+v", fr)
	}

	// One accepted far ahead; a second is refused while it is pending.
	if r := request(t, nc, "a", ho(far(), "b", 2, 3)); !r.OK {
		t.Fatalf("valid hand-over refused: %+v", r)
	}
	if r := request(t, nc, "a", ho(far(), "c", 2, 3)); r.OK || !strings.Contains(r.Error, "already pending") {
		t.Fatalf("second hand-over: reply %+v; want refused as pending", r)
	}
	waitFor(t, 5*time.Second, "the pending hand-over is stamped on the frames", func() bool {
		fr := lastFrame(t, nc)
		return fr.Handover != nil && fr.Handover.To == "b"
	})
}

// TestCoordinatorIgnoresMalformedFrames proves that the coordinator does not
// take a malformed frame for an owner's: frames that DecodeFrame rejects
// (here: no schema, tick, state, sample or outputs) published under an
// instance name that is not running do not make it believe the instance is
// flying, so the update is refused before the runtime starts anything.
func TestCoordinatorIgnoresMalformedFrames(t *testing.T) {
	f := newFixture(t)
	c := f.coordinator()
	nc := f.bus.Connect("vandal")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			nc.Publish(handoff.SubjectsFor(testApp).Frames(), []byte(`{"instance":"ghost","epoch":1}`))
			time.Sleep(time.Millisecond)
		}
	}()
	res, err := c.Run(context.Background(), coordinator.Plan{Image: "test", Owner: "ghost", Candidate: "b", SyncTimeout: time.Second})
	if err == nil || res.Outcome != report.OutcomeRefused || f.rt.Started("b") {
		t.Fatalf("Run = %+v, %v, runtime calls %+v; want refused without starting anything", res, err, f.rt.Calls())
	}
}

// TestNoCommitAfterTakeBack proves that the coordinator does not commit to
// the candidate when the standby has taken back by the time it is told to
// retire: the standby refuses to retire because it is the owner again, so
// the update must end reverted with the old owner left running. The take-back
// is made to fall between the coordinator's last probation check and its
// retire request: at the start of probation the new owner's loop stalls for
// longer than the holder timeout (so the lease shows it silent), and the
// standby's loop stalls between its take-back Tick and the write and
// frame that would announce it (Probation is a single check).
func TestNoCommitAfterTakeBack(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	f.candidates(nil, nil)
	c := f.coordinator()
	onEvent := func(e handoff.Event) {
		if e.Phase == "probation" {
			f.instance("b").Loop.Pause()
			// The standby's ticks are the test's now: it watches the
			// silent owner tick by tick (a standby that did not run
			// does not count the owner's silence) until it takes back.
			owner.Loop.Pause()
			var d handoff.Decision
			for end := time.Now().Add(2 * time.Second); !d.Write && time.Now().Before(end); {
				sleepTicks(1)
				d = owner.P.Tick(currentTick())
			}
			if !d.Write || d.Epoch != 3 {
				t.Errorf("the standby did not take back: %+v", d)
			}
			// Its loop goes on (and announces the take-back) shortly after
			// the coordinator's retire request.
			time.AfterFunc(100*time.Millisecond, owner.Loop.Resume)
		}
	}
	res, err := c.Run(context.Background(), coordinator.Plan{Image: "test", OnEvent: onEvent,
		Owner: "a", Candidate: "b", Probation: time.Nanosecond, SyncTimeout: 5 * time.Second,
	})
	if stopped, _ := f.rt.Stopped("a"); res.Outcome != report.OutcomeReverted || !res.TakenBack || stopped {
		t.Fatalf("Run = %+v, %v; a stopped: %v; want reverted after the take-back, and the standby that took back left running", res, err, stopped)
	}
}

// TestRollbackReusesInstanceName hands a over to b and then back to a new
// instance named a, as a rollback to the release retired a moment ago does.
// The retired a's last status must not pass for the new a's: it is over a
// second old by then, and the coordinator used to abort on it with
// "candidate stopped reporting".
func TestRollbackReusesInstanceName(t *testing.T) {
	f := newFixture(t)
	f.startOwner("a")
	f.candidates(nil, nil)
	c := f.coordinator()
	plan := coordinator.Plan{Image: "test", Owner: "a", Candidate: "b", Probation: 300 * time.Millisecond, SyncTimeout: 5 * time.Second}
	res, err := c.Run(context.Background(), plan)
	if err != nil || res.Outcome != report.OutcomeCommitted {
		t.Fatalf("a -> b: %+v, %v", res, err)
	}
	time.Sleep(1200 * time.Millisecond) // the retired a's last status is now stale
	plan.Owner, plan.Candidate = "b", "a"
	res, err = c.Run(context.Background(), plan)
	if res.Outcome == report.OutcomeAborted && strings.Contains(res.Reason, "stopped reporting") {
		t.Fatalf("b -> a aborted on the retired a's status: %s", res.Reason)
	}
	if err != nil || res.Outcome != report.OutcomeCommitted || res.Owner != "a" {
		t.Fatalf("b -> a: %+v, %v", res, err)
	}
	if d := f.ledger.Doubles(); len(d) != 0 {
		t.Fatalf("ticks written twice: %v", d)
	}
}

// TestRevertNeverStopsTheDriver reverts an update whose standby misses the
// hand-back: its loop stalls through it, so the candidate, having handed
// back, takes back at the hand-back's fallback epoch and drives on. The
// coordinator used to take that epoch for the standby's and stop the
// candidate, and nobody drove (the drone fell in a 1000 Hz soak). It must
// hand back again above the candidate's epoch, stop the candidate only once
// the standby drives, and leave no tick written twice.
func TestRevertNeverStopsTheDriver(t *testing.T) {
	f := newFixture(t)
	owner := f.startOwner("a")
	f.candidates(nil, nil)
	c := f.coordinator()
	stalled := make(chan struct{})
	onEvent := func(e handoff.Event) {
		if e.Phase != "revert" {
			return
		}
		owner.Loop.Pause()
		go func() {
			defer close(stalled)
			defer owner.Loop.Resume()
			// Until the candidate has taken back at the hand-back's
			// fallback (4), after the hand-back (3) that nobody took.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if b, _ := f.ledger.Beat(); b.Highest >= 4 {
					return
				}
			}
			t.Error("the candidate never took back while the standby stalled")
		}()
	}
	res, err := c.Run(context.Background(), coordinator.Plan{Image: "test", OnEvent: onEvent, Revert: true,
		Owner: "a", Candidate: "b", Probation: 100 * time.Millisecond, SyncTimeout: 5 * time.Second,
	})
	<-stalled
	if res.Outcome != report.OutcomeReverted || res.Owner != "a" || err == nil || !strings.Contains(err.Error(), "reverted to a") {
		t.Fatalf("Run = %+v, %v; want reverted to a", res, err)
	}
	if b, _ := f.ledger.Beat(); b.Epoch != 5 || b.Highest != 5 || res.Epoch != 5 {
		t.Fatalf("lease %+v, result epoch %d; want the standby driving at 5, above the candidate's take-back at 4", b, res.Epoch)
	}
	if stopped, _ := f.rt.Stopped("b"); !stopped {
		t.Fatal("the candidate was not stopped once the standby drove")
	}
	checkOwnerWroteEveryTick(t, f, owner, currentTick(), 100)
	if d := f.ledger.Doubles(); len(d) != 0 {
		t.Fatalf("ticks written twice: %v", d)
	}
}

// sentControl is a control request as a spy on the subjects saw it.
type sentControl struct {
	To      string
	Control handoff.Control
}

type controlSpy struct {
	mu   sync.Mutex
	seen []sentControl
}

// spyControl records every control request to any instance, in order.
func spyControl(t *testing.T, f *fixture) *controlSpy {
	t.Helper()
	s := &controlSpy{}
	nc := f.bus.Connect("spy")
	prefix := handoff.SubjectsFor(testApp).Control("")
	if _, err := nc.Subscribe(prefix+"*", func(m *nats.Msg) {
		var c handoff.Control
		if err := json.Unmarshal(m.Data, &c); err != nil {
			t.Errorf("control request %q: %v", m.Data, err)
		}
		s.mu.Lock()
		s.seen = append(s.seen, sentControl{To: strings.TrimPrefix(m.Subject, prefix), Control: c})
		s.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

// sent returns the requests seen once there are n, or after 5 s. Call it
// when every request has been answered: the spy is a subscriber of its
// own, and NATS hands it a message on its own goroutine, possibly after
// the instance it was for has answered (ci9 saw the retire missing).
func (s *controlSpy) sent(n int) []sentControl {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		seen := slices.Clone(s.seen)
		s.mu.Unlock()
		if len(seen) >= n || time.Now().After(deadline) {
			return seen
		}
	}
}
