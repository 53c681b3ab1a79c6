package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/strategy"
)

// fakes records what the agent asked of its dependencies.
type fakes struct {
	mu       sync.Mutex
	events   []Event
	states   []StateReport
	images   map[string]containers.Image // pullable refs
	lookErr  map[string]error            // Lookup's error for a ref
	pulls    []string
	schema   string // the owner's, for OwnerSchema
	schemErr error
	removed  []string
	owners   []string // cold starts
	stopped  []string // Stop calls
	plans    []coordinator.Plan
	outcome  string     // what the fake updater returns
	flying   bool       // ...with the candidate left flying (a revert that could not hand back)
	progress []int64    // Pull reports these bytes fetched, one call each...
	clock    *time.Time // ...advancing the agent's clock 300 ms per call
}

func (f *fakes) PublishEvent(_ context.Context, b []byte) error {
	var e Event
	json.Unmarshal(b, &e)
	f.mu.Lock()
	f.events = append(f.events, e)
	f.mu.Unlock()
	return nil
}
func (f *fakes) PublishState(_ context.Context, b []byte) error {
	var s StateReport
	json.Unmarshal(b, &s)
	f.mu.Lock()
	f.states = append(f.states, s)
	f.mu.Unlock()
	return nil
}

// metaBytes is what the fake Lookup reads: index, manifest and config.
const metaBytes = 1500

func (f *fakes) Lookup(_ context.Context, ref string) (containers.Image, error) {
	if err := f.lookErr[ref]; err != nil {
		return containers.Image{Fetched: metaBytes}, err
	}
	img, ok := f.images[ref]
	if !ok {
		return containers.Image{}, fmt.Errorf("%w: %s", containers.ErrNotFound, ref)
	}
	img.Fetched = metaBytes
	return img, nil
}
func (f *fakes) Pull(_ context.Context, ref string, progress func(containers.Progress)) (containers.Image, error) {
	img, ok := f.images[ref]
	if !ok {
		return containers.Image{}, fmt.Errorf("%w: %s", containers.ErrNotFound, ref)
	}
	for _, n := range f.progress {
		*f.clock = f.clock.Add(300 * time.Millisecond)
		progress(containers.Progress{Fetched: n})
	}
	f.pulls = append(f.pulls, ref)
	return img, nil
}
func (f *fakes) OwnerSchema(context.Context, string) (string, error) { return f.schema, f.schemErr }
func (f *fakes) RemoveImage(_ context.Context, ref string) error {
	f.removed = append(f.removed, ref)
	return nil
}
func (f *fakes) Start(_ context.Context, s coordinator.Spec) error {
	if s.Mode == coordinator.ModeCold {
		f.owners = append(f.owners, s.Instance)
	}
	return nil
}
func (f *fakes) Stop(_ context.Context, inst string) error {
	f.stopped = append(f.stopped, inst)
	return nil
}
func (f *fakes) Run(_ context.Context, p coordinator.Plan) (coordinator.Result, error) {
	f.plans = append(f.plans, p)
	if f.outcome != report.OutcomeCommitted {
		owner := p.Owner
		if f.flying {
			owner = p.Candidate
		}
		return coordinator.Result{Outcome: f.outcome, Owner: owner}, errors.New("handoff: " + f.outcome)
	}
	return coordinator.Result{Outcome: f.outcome, Owner: p.Candidate, Epoch: 2}, nil
}

func (f *fakes) last() Event { return f.events[len(f.events)-1] }

type harness struct {
	*fakes
	a    *Agent
	j    *journal.Journal
	priv ed25519.PrivateKey
	kid  string
	now  time.Time
	n    int
}

func digest(c byte) string { return "@sha256:" + strings.Repeat(string(c), 64) }

var (
	refV1 = "127.0.0.1:5000/flight" + digest('1')
	refV2 = "127.0.0.1:5000/flight" + digest('2')
)

func newHarness(t *testing.T) *harness {
	t.Helper()
	pub, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	labels := func(v, schemas string) map[string]string {
		return map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": v, "io.skyswap.state-schemas": schemas, "io.skyswap.strategy": "handoff"}
	}
	f := &fakes{outcome: report.OutcomeCommitted, schema: "flight.state/1", lookErr: map[string]error{}, images: map[string]containers.Image{
		refV1: {Ref: refV1, Labels: labels("v1", "flight.state/1"), Fetched: 3 << 20},
		refV2: {Ref: refV2, Labels: labels("v2", "flight.state/1"), Fetched: 3 << 20},
	}}
	dir := t.TempDir()
	seen, err := command.OpenSeen(filepath.Join(dir, "seen.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen.Now = func() time.Time { return now }
	j, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	kid := command.KeyID(pub)
	clock := now
	f.clock = &clock
	a, err := New(Config{Drone: "d1", Labels: map[string]string{"site": "field-a"}, Now: func() time.Time { return clock }, Schemas: f,
		Verifier: command.Verifier{Keys: map[string]ed25519.PublicKey{kid: pub}, Now: func() time.Time { return now }}},
		f, f, f, f, seen, j)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{fakes: f, a: a, j: j, priv: priv, kid: kid, now: now}
}

// cmd signs a command; edit changes it before signing.
func (h *harness) cmd(t *testing.T, kind command.Kind, image string, edit func(*command.Command)) []byte {
	t.Helper()
	h.n++
	c := command.Command{ID: fmt.Sprintf("c%d", h.n), Kind: kind, Drone: "d1", App: "flight", Image: image,
		Issued: h.now, Expires: h.now.Add(2 * time.Minute)}
	if edit != nil {
		edit(&c)
	}
	s, err := command.Sign(c, h.kid, h.priv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeployUpdateRollback: the first update deploys cold; the next hands
// over through the coordinator with the image's declared schemas; a
// rollback without an image goes back to the previous release.
func TestDeployUpdateRollback(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
	if e := h.last(); e.Phase != "deployed" || len(h.owners) != 1 {
		t.Fatalf("first update: %+v, owners %v", e, h.owners)
	}
	v1 := h.owners[0]
	if st := h.j.State(); st.Owner["flight"] != v1 || st.Committed["flight"].Image != refV1 {
		t.Fatalf("journal after deploy: %+v", st)
	}

	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
	if len(h.plans) != 1 {
		t.Fatalf("plans %v", h.plans)
	}
	p := h.plans[0]
	if p.Owner != v1 || p.Candidate == v1 || p.Strategy != strategy.Handoff || len(p.Accepts) != 1 || p.Accepts[0] != "flight.state/1" {
		t.Fatalf("plan %+v", p)
	}
	if e := h.last(); e.Phase != "result" || e.Outcome != report.OutcomeCommitted {
		t.Fatalf("update: %+v", e)
	}
	st := h.j.State()
	if st.Owner["flight"] != p.Candidate || st.Committed["flight"].Image != refV2 || st.Previous["flight"].Image != refV1 || st.Update != nil {
		t.Fatalf("journal after update: %+v", st)
	}

	h.a.Handle(ctx, h.cmd(t, command.KindRollback, "", nil))
	if len(h.plans) != 2 || h.plans[1].Image != refV1 {
		t.Fatalf("rollback plan %+v, want the candidate on %s", h.plans, refV1)
	}
	if st := h.j.State(); st.Committed["flight"].Image != refV1 || st.Previous["flight"].Image != refV2 {
		t.Fatalf("journal after rollback: %+v", st)
	}
	if len(h.states) == 0 || h.states[len(h.states)-1].Committed["flight"] != refV1 {
		t.Fatalf("state not reported: %+v", h.states)
	}
	if l := h.states[len(h.states)-1].Labels; l["site"] != "field-a" {
		t.Errorf("state labels %v, want the agent's site=field-a", l)
	}
}

// TestPullProgress: a pull reports its progress on events at most every
// 500 ms of the agent's clock.
func TestPullProgress(t *testing.T) {
	h := newHarness(t)
	h.progress = []int64{1 << 20, 2 << 20, 3 << 20, 4 << 20} // at 300, 600, 900, 1200 ms
	h.a.Handle(context.Background(), h.cmd(t, command.KindUpdate, refV1, nil))
	var got []int64
	for _, e := range h.events {
		if e.Phase == "pulling" && e.Bytes > 0 {
			got = append(got, e.Bytes)
		}
	}
	// Reports go out from their own goroutine, the newest replacing one
	// not sent yet: the 2 MiB report may be overtaken, the last is 4 MiB.
	if len(got) == 0 || len(got) > 2 || got[len(got)-1] != 4<<20 || (len(got) == 2 && got[0] != 2<<20) {
		t.Fatalf("progress events with bytes %v, want [2097152 4194304] or [4194304]", got)
	}
	if e := h.last(); e.Phase != "deployed" {
		t.Fatalf("last event %+v", e)
	}
}

// TestAbortKeepsOwner: an update that does not commit leaves the journal's
// owner and release as they were.
func TestAbortKeepsOwner(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
	v1 := h.owners[0]
	h.outcome = report.OutcomeAborted
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
	if e := h.last(); e.Phase != "result" || e.Outcome != report.OutcomeAborted || e.Error == "" {
		t.Fatalf("event %+v", e)
	}
	if st := h.j.State(); st.Owner["flight"] != v1 || st.Committed["flight"].Image != refV1 || st.Update != nil {
		t.Fatalf("journal %+v", st)
	}
	// The failed candidate's image goes; the flying release's stays.
	if len(h.removed) != 1 || h.removed[0] != refV2 {
		t.Fatalf("images removed %v, want only the failed candidate's %s", h.removed, refV2)
	}
}

// TestRevertLeftCandidateFlying: a revert that could not hand back leaves
// the candidate flying; the journal records it as the owner (the next
// update hands over from it) and its image stays.
func TestRevertLeftCandidateFlying(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
	h.outcome, h.flying = report.OutcomeReverted, true
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
	cand := h.plans[0].Candidate
	if e := h.last(); e.Phase != "result" || e.Outcome != report.OutcomeReverted {
		t.Fatalf("event %+v", e)
	}
	if st := h.j.State(); st.Owner["flight"] != cand || st.Committed["flight"].Image != refV2 || st.Update != nil {
		t.Fatalf("journal %+v; want the flying candidate %s of %s as the owner", st, cand, refV2)
	}
	if len(h.removed) != 0 {
		t.Fatalf("images removed %v; the flying candidate's must stay", h.removed)
	}
	h.outcome, h.flying = report.OutcomeCommitted, false
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
	if p := h.plans[len(h.plans)-1]; p.Owner != cand {
		t.Fatalf("the next update hands over from %q; want the flying %s", p.Owner, cand)
	}
}

// TestRefusals: each bad command is refused with an event naming why, and
// nothing is pulled into service, started or handed over.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
	_, other, _ := command.GenerateKey()
	replayed := h.cmd(t, command.KindStatus, "", nil)
	h.a.Handle(ctx, replayed)
	h.images["127.0.0.1:5000/other"+digest('3')] = containers.Image{Labels: map[string]string{"io.skyswap.app": "camera"}}
	refV3 := "127.0.0.1:5000/flight" + digest('3')
	h.images[refV3] = containers.Image{Ref: refV3, Labels: map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v3",
		"io.skyswap.state-schemas": "flight.state/2,flight.state/3"}}
	refArm := "127.0.0.1:5000/flight" + digest('a')
	h.lookErr[refArm] = fmt.Errorf("%w: %s has linux/arm64, this host is linux/amd64", containers.ErrNoPlatform, refArm)

	cases := []struct {
		name    string
		payload []byte
		want    string
		fetched int64 // reported on the refusal: the lookup's, once it succeeds
	}{
		{"malformed JSON", []byte("{not json"), "malformed", 0},
		{"oversized", []byte(`{"id":"` + strings.Repeat("x", command.MaxSize) + `"}`), "too large", 0},
		{"unsigned", func() []byte {
			b := h.cmd(t, command.KindUpdate, refV2, nil)
			var m map[string]any
			json.Unmarshal(b, &m)
			delete(m, "sig")
			b, _ = json.Marshal(m)
			return b
		}(), "unsigned", 0},
		{"wrong key", func() []byte {
			c := command.Command{ID: "w1", Kind: command.KindUpdate, Drone: "d1", App: "flight", Image: refV2, Issued: h.now, Expires: h.now.Add(time.Minute)}
			s, _ := command.Sign(c, h.kid, other)
			b, _ := json.Marshal(s)
			return b
		}(), "signature", 0},
		{"expired", h.cmd(t, command.KindUpdate, refV2, func(c *command.Command) {
			c.Issued, c.Expires = h.now.Add(-3*time.Minute), h.now.Add(-time.Minute)
		}), "expired", 0},
		{"other drone", h.cmd(t, command.KindUpdate, refV2, func(c *command.Command) { c.Drone = "d2" }), "drone", 0},
		{"replayed", replayed, "replayed", 0},
		{"digest that does not exist", h.cmd(t, command.KindUpdate, "127.0.0.1:5000/flight"+digest('9'), nil), "not found", 0},
		{"image of another app", h.cmd(t, command.KindUpdate, "127.0.0.1:5000/other"+digest('3'), nil), "app", metaBytes},
		{"image without this platform", h.cmd(t, command.KindUpdate, refArm, nil), "no variant for this platform", metaBytes},
		{"state schema the owner does not publish", h.cmd(t, command.KindUpdate, refV3, nil),
			`incompatible state schema: candidate accepts state schemas [flight.state/2 flight.state/3], owner ` + h.owners[0] + ` publishes "flight.state/1"`, metaBytes},
		{"already flying", h.cmd(t, command.KindUpdate, refV1, nil), "already committed", metaBytes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, pulls, events := len(h.plans)+len(h.owners), len(h.pulls), len(h.events)
			h.a.Handle(ctx, tc.payload)
			e := h.last()
			if e.Phase != "refused" || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("event %+v, want refused mentioning %q", e, tc.want)
			}
			if e.Bytes != tc.fetched {
				t.Errorf("refusal reports %d bytes fetched, want %d", e.Bytes, tc.fetched)
			}
			if len(h.events) != events+1 {
				t.Errorf("events %+v, want the refusal alone", h.events[events:])
			}
			if len(h.pulls) != pulls || len(h.plans)+len(h.owners) != before {
				t.Fatalf("pulled %v, or something was started or handed over", h.pulls[pulls:])
			}
		})
	}
	if st := h.j.State(); st.Committed["flight"].Image != refV1 || st.Update != nil {
		t.Fatalf("journal changed: %+v", st)
	}
}

// TestOwnerSchemaUnknown: when the owner's schema cannot be read before
// the pull, the update goes on and the coordinator gets the candidate's
// schemas to check itself.
func TestOwnerSchemaUnknown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema string
		err    error
	}{
		{"no frame at hand", "", nil},
		{"NATS error", "", errors.New("nats: timeout")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
			h.schema, h.schemErr = tc.schema, tc.err
			h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
			if len(h.pulls) != 2 || len(h.plans) != 1 || len(h.plans[0].Accepts) != 1 {
				t.Fatalf("pulls %v plans %+v: want v2 pulled and the plan to carry its schemas", h.pulls, h.plans)
			}
			if e := h.last(); e.Phase != "result" || e.Outcome != report.OutcomeCommitted {
				t.Fatalf("event %+v", e)
			}
		})
	}
}

// TestUnsettledUpdateKeepsImage: an update that ends with no outcome (a
// baseline strategy that failed after starting the candidate) may have
// left the candidate flying: its image stays for Recover to judge.
func TestUnsettledUpdateKeepsImage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
	h.outcome = ""
	h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
	if len(h.removed) != 0 {
		t.Fatalf("images removed %v after an unsettled update", h.removed)
	}
}

// listed is a Lister of fixed containers.
type listed []containers.Status

func (l listed) List(context.Context) ([]containers.Status, error) { return l, nil }

// running is a container of ref as the agent started it.
func running(id, ref, version string) containers.Status {
	return containers.Status{ID: id, Image: ref, Running: true,
		Labels: map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": version}}
}

// TestRecoverLostState: an agent whose state directory was lost while its
// app flew adopts the running instance (a push of the same release is
// refused as flying, a push of another hands over from it), and one that
// cannot tell which of two instances flies leaves both running and refuses
// to deploy, saying what to do.
func TestRecoverLostState(t *testing.T) {
	ctx := context.Background()
	t.Run("adopt", func(t *testing.T) {
		h := newHarness(t)
		v1 := journal.NewRelease("flight", refV1, "v1", nil, h.now).ID
		if err := h.a.Recover(ctx, "flight", listed{running(v1, refV1, "v1")}, v1); err != nil {
			t.Fatal(err)
		}
		if st := h.j.State(); st.Owner["flight"] != v1 || st.Committed["flight"].Version != "v1" {
			t.Fatalf("journal after recovery %+v", st)
		}
		if e := h.last(); e.Phase != report.PhaseRecovered || e.To != v1 {
			t.Fatalf("event %+v", e)
		}
		h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV1, nil))
		if e := h.last(); e.Phase != report.PhaseRefused || !strings.Contains(e.Error, "already committed and flying") {
			t.Fatalf("push of the flying release: %+v", e)
		}
		h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
		if len(h.owners) != 0 || len(h.plans) != 1 || h.plans[0].Owner != v1 {
			t.Fatalf("cold starts %v, plans %+v: want one hand-over from %s", h.owners, h.plans, v1)
		}
		if e := h.last(); e.Outcome != report.OutcomeCommitted {
			t.Fatalf("event %+v", e)
		}
	})
	t.Run("cannot tell", func(t *testing.T) {
		h := newHarness(t)
		both := listed{running("flight-a", refV1, "v1"), running("flight-b", refV2, "v2")}
		if err := h.a.Recover(ctx, "flight", both, ""); err != nil {
			t.Fatal(err)
		}
		if len(h.stopped) != 0 {
			t.Fatalf("stopped %v: nothing may be stopped when the agent cannot tell which flies", h.stopped)
		}
		if e := h.last(); e.Phase != report.PhaseRecovered || !strings.Contains(e.Error+e.Outcome, "cannot tell") {
			t.Fatalf("event %+v", e)
		}
		h.a.Handle(ctx, h.cmd(t, command.KindUpdate, refV2, nil))
		if e := h.last(); e.Phase != report.PhaseRefused || !strings.Contains(e.Error, "task kill") {
			t.Fatalf("push while undecided: %+v", e)
		}
		if len(h.owners)+len(h.plans)+len(h.pulls) != 0 {
			t.Fatalf("started %v, planned %v, pulled %v", h.owners, h.plans, h.pulls)
		}
	})
}
