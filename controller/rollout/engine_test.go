package rollout

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	imgV1 = "reg:5000/flight:v1@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	imgV2 = "reg:5000/flight:v2@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var t0 = time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)

// bench is one run driven by hand: a clock, the drones' states, and what
// was sent.
type bench struct {
	t      *testing.T
	r      *run
	now    time.Time
	states map[string]report.State
	sent   []command.Command
}

func newBench(t *testing.T, spec Spec, drones int) *bench {
	var ids []string
	states := map[string]report.State{}
	for i := range drones {
		id := fmt.Sprintf("d%02d", i+1)
		ids = append(ids, id)
		states[id] = report.State{Drone: id, Online: true, Committed: map[string]string{"flight": imgV1}}
	}
	if spec.Image == "" {
		spec.Image = imgV2
	}
	spec.Drones = ids
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	return &bench{t: t, r: newRun(newRecord("ro-test", spec, ids, t0)), now: t0, states: states}
}

// step advances the clock by d and steps, judging silence; what it sends
// is recorded as sent with the spec's ttl.
func (b *bench) step(d time.Duration) []string {
	b.t.Helper()
	b.now = b.now.Add(d)
	var ids []string
	for _, o := range b.r.step(b.now, true, b.states) {
		c := o.cmd
		c.Issued, c.Expires = b.now.Truncate(time.Second), b.now.Truncate(time.Second).Add(b.r.rec.Spec.ttl())
		b.r.sent(o, c, b.now)
		b.sent = append(b.sent, c)
		ids = append(ids, string(c.Kind[0])+":"+c.Drone)
	}
	return ids
}

// final reports drone's command of kind ending: a phase and outcome.
func (b *bench) final(drone, kind, phase, outcome string) bool {
	b.t.Helper()
	id := CommandID(b.r.rec.ID, kind, drone)
	x, ok := b.r.cmds[id]
	if !ok {
		b.t.Fatalf("no command %s", id)
	}
	b.r.event(x, report.Event{Drone: drone, Command: id, Phase: report.PhasePulling}, b.now)
	return b.r.event(x, report.Event{Drone: drone, Command: id, Phase: phase, Outcome: outcome}, b.now)
}

func (b *bench) commit(drone, kind string) bool {
	return b.final(drone, kind, report.PhaseResult, report.OutcomeCommitted)
}

func (b *bench) revert(drone string) bool {
	return b.final(drone, kindUpdate, report.PhaseResult, report.OutcomeReverted)
}

func (b *bench) state(want State) {
	b.t.Helper()
	if b.r.rec.State != want {
		b.t.Fatalf("state %s (%s), want %s", b.r.rec.State, b.r.rec.Reason, want)
	}
}

func expect(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: sent %v, want %v", what, got, want)
	}
}

func TestWavesComplete(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Count: 1}, {Percent: 50}, {Percent: 100}}, Soak: Duration(10 * time.Second)}, 4)
	expect(t, "wave 1", b.step(0), "u:d01")
	expect(t, "wave 1 in flight", b.step(time.Second))
	b.commit("d01", kindUpdate)
	expect(t, "wave 1 over: soak", b.step(time.Second))
	expect(t, "soaking", b.step(9*time.Second))
	expect(t, "wave 2", b.step(time.Second), "u:d02")
	b.commit("d02", kindUpdate)
	expect(t, "wave 2 over: soak", b.step(time.Second))
	expect(t, "wave 3", b.step(10*time.Second), "u:d03", "u:d04")
	b.commit("d03", kindUpdate)
	b.commit("d04", kindUpdate)
	b.step(time.Second)
	b.state(Completed)
	if !b.r.rec.Succeeded() || b.r.rec.Ended.IsZero() {
		t.Errorf("completed record %+v", b.r.rec)
	}
	for i, w := range b.r.rec.Waves {
		if w.Started.IsZero() || w.Ended.IsZero() || w.Ended.Before(w.Started) {
			t.Errorf("wave %d: %+v", i+1, w)
		}
	}
	if d := b.r.rec.Drones[0]; d.Previous != imgV1 || d.Update.Outcome != report.OutcomeCommitted {
		t.Errorf("drone %+v", d)
	}
	if len(b.sent) != 4 || b.sent[0].ID != "ro-test.u.d01" || b.sent[0].Image != imgV2 || b.sent[0].App != "flight" {
		t.Errorf("sent %+v", b.sent)
	}
}

// TestAbortRollback: a wave over max_failed stops the rollout; the drones
// in flight finish, then every drone the rollout updated is rolled back
// to its previous release, and nothing more of the update is sent.
func TestAbortRollback(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Count: 1}, {Count: 4}, {Percent: 100}}, MaxFailed: Threshold{Percent: 20, IsPct: true},
		MinDone: 3, OnAbort: Rollback}, 8)
	b.step(0)
	b.commit("d01", kindUpdate)
	expect(t, "wave 2", b.step(time.Second), "u:d02", "u:d03", "u:d04")
	b.revert("d02")
	b.step(time.Second)
	b.state(Running) // 1 of 1 failed, but fewer than min_done finished
	b.commit("d03", kindUpdate)
	expect(t, "1 of 2 failed: over 20% with 2 finished of 3... not judged yet", b.step(time.Second))
	b.state(Running)
	if !b.commit("d04", kindUpdate) {
		t.Fatal("event refused")
	}
	expect(t, "1 of 3 failed, min_done met: rollback of the updated", b.step(time.Second), "r:d01", "r:d03", "r:d04")
	b.state(Aborting)
	if !strings.Contains(b.r.rec.Reason, "wave 2: 1 of 3") {
		t.Errorf("reason %q", b.r.rec.Reason)
	}
	for _, c := range b.sent[len(b.sent)-3:] {
		if c.Kind != command.KindRollback || c.Image != imgV1 {
			t.Errorf("rollback %+v, want kind rollback to %s", c, imgV1)
		}
	}
	b.commit("d01", kindRollback)
	b.commit("d03", kindRollback)
	expect(t, "one rollback in flight", b.step(time.Second))
	b.final("d04", kindRollback, report.PhaseRefused, report.OutcomeRefused)
	expect(t, "done", b.step(time.Second))
	b.state(RolledBk)
	c := b.r.rec.Counts(-1)
	if c.Done != 3 || c.Failed != 1 || c.Pending != 4 || c.RolledBack != 2 || c.RollbackFailed != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestAbortStop(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Count: 2}, {Percent: 100}}, MaxFailed: Threshold{Count: 0}}, 4)
	expect(t, "wave 1", b.step(0), "u:d01", "u:d02")
	b.revert("d01")
	expect(t, "aborting, d02 in flight", b.step(time.Second))
	b.state(Aborting)
	b.commit("d02", kindUpdate)
	expect(t, "stopped", b.step(time.Second))
	b.state(Aborted)
}

// TestUnreachedAndTimeout: no answer by the expiry is unreached (and not
// a failure); an answer without an outcome past the timeout is a failure;
// neither is judged while the Manager settles.
func TestUnreachedAndTimeout(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Percent: 100}}, TTL: Duration(time.Minute), Timeout: Duration(2 * time.Minute),
		MaxFailed: Threshold{Count: 1}}, 3)
	b.step(0)
	x := b.r.cmds[CommandID("ro-test", kindUpdate, "d02")]
	b.r.event(x, report.Event{Drone: "d02", Command: "ro-test.u.d02", Phase: report.PhasePulling}, b.now)
	b.commit("d03", kindUpdate)
	b.now = b.now.Add(time.Hour)
	b.r.step(b.now, false, b.states)
	if c := b.r.rec.Counts(0); c.InProgress != 2 {
		t.Fatalf("not judging: %+v", c)
	}
	b.step(0)
	d := b.r.rec.Drones
	if d[0].Update.Status != Unreached || d[1].Update.Status != Failed || d[1].Update.Outcome != "timeout" || d[2].Update.Status != Done {
		t.Fatalf("drones %+v", d)
	}
	b.state(Completed)
	if b.r.rec.Succeeded() {
		t.Error("Succeeded with an unreached and a failed drone")
	}
	// An answer after the end is late: ignored, counted.
	if b.commit("d01", kindUpdate) || b.r.rec.Ignored.Late != 2 || d[0].Update.Status != Unreached {
		t.Errorf("late event: ignored %+v, drone %+v", b.r.rec.Ignored, d[0])
	}
}

// TestRefusedExpired: a drone back after the expiry refuses its queued
// command: unreached, not failed.
func TestRefusedExpired(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Percent: 100}}, TTL: Duration(time.Minute)}, 1)
	b.step(0)
	b.now = b.now.Add(61 * time.Second)
	b.final("d01", kindUpdate, report.PhaseRefused, "")
	b.step(0)
	if s := b.r.rec.Drones[0].Update.Status; s != Unreached {
		t.Errorf("status %s, want unreached", s)
	}
	b.state(Completed)
}

func TestControls(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Count: 1}, {Percent: 100}}}, 3)
	b.step(0)
	for _, tc := range []struct {
		what string
		ok   bool
		want State
	}{
		{"resume", false, Running},
		{"pause", true, Paused},
		{"pause", false, Paused},
		{"resume", true, Running},
		{"pause", true, Paused},
	} {
		if err := b.r.control(tc.what); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.what, err, tc.ok)
		}
		b.state(tc.want)
	}
	b.commit("d01", kindUpdate)
	expect(t, "paused: nothing new", b.step(time.Second))
	if err := b.r.control("resume"); err != nil {
		t.Fatal(err)
	}
	expect(t, "resumed", b.step(time.Second), "u:d02", "u:d03")
	if err := b.r.control("cancel"); err != nil {
		t.Fatal(err)
	}
	expect(t, "canceling: in flight", b.step(time.Second))
	b.state(Canceling)
	b.commit("d02", kindUpdate)
	b.commit("d03", kindUpdate)
	b.step(time.Second)
	b.state(Canceled)
	if err := b.r.control("cancel"); err == nil {
		t.Error("cancel of a canceled rollout: no error")
	}
}

func TestParallelAndSkip(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Percent: 100}}, Parallel: 2}, 5)
	b.states["d02"] = report.State{Drone: "d02", Committed: map[string]string{"flight": imgV2}}
	expect(t, "two at a time, d02 skipped", b.step(0), "u:d01", "u:d03")
	expect(t, "none free", b.step(time.Second))
	b.commit("d01", kindUpdate)
	expect(t, "one free", b.step(time.Second), "u:d04")
	b.commit("d03", kindUpdate)
	b.commit("d04", kindUpdate)
	expect(t, "the last", b.step(time.Second), "u:d05")
	b.commit("d05", kindUpdate)
	b.step(time.Second)
	b.state(Completed)
	if d := b.r.rec.Drones[1]; d.Update.Status != Skipped || !b.r.rec.Succeeded() {
		t.Errorf("skipped drone %+v", d)
	}
}

// TestRecordGolden pins the record's JSON: the ground's file and its API.
func TestRecordGolden(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Count: 1}, {Percent: 100}}, MaxFailed: Threshold{Percent: 5, IsPct: true}, MinDone: 10,
		OnAbort: Rollback, Soak: Duration(30 * time.Second)}, 3)
	b.step(0)
	b.commit("d01", kindUpdate)
	b.step(time.Second)
	b.step(30 * time.Second)
	b.revert("d02")
	got, err := json.MarshalIndent(b.r.rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "record.golden.json", got)
	var back Record
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.MarshalIndent(&back, "", "  "); string(again) != string(got) {
		t.Errorf("the record does not survive a round trip:\n%s", again)
	}
	golden(t, "lines.golden.txt", []byte(strings.Join(Lines(*b.r.rec), "\n")))
	view, err := json.MarshalIndent(b.r.rec.View(true), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "view.golden.json", view)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s changed:\n%s\nwant:\n%s", name, got, want)
	}
}
