package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	godigest "github.com/opencontainers/go-digest"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/images/build"
)

// TestAgentFaults runs what can go wrong with an update through the real
// agent (MQTT, containerd, NATS) while flight v1 hovers on the virtual
// drone: bad commands, each refused with nothing fetched or started; a
// candidate that crashes at start (aborted); and a candidate that dies
// after it took over (the standby v1 takes back: reverted). Each case is
// judged by the referee over its own window: v1 keeps flying, never two
// writers in one tick.
func TestAgentFaults(t *testing.T) {
	r := newAgentRig(t)
	ctx := context.Background()
	faulty := func(version, fault string) build.Config {
		return build.Config{Version: version, Tags: []string{"skyswap_faults"}, Stamps: map[string]string{"fault": fault}}
	}
	crash := r.push(faulty("v3-crash", "crash"))
	exit := r.push(faulty("v3-exit", "exit"))
	schema2 := r.push(build.Config{Version: "v3-schema2", Schemas: []string{"flight.state/2"}})
	other := r.push(build.Config{Version: "v3-" + otherArch(), Platforms: []v1.Platform{{OS: "linux", Architecture: otherArch()}}})
	st := openStore(t)
	for _, ref := range r.refs {
		st.remove(t, ref) // whatever an interrupted run left: the checks below start from nothing
	}

	r.runDaemon()
	deployed := r.deploy(r.refs["v1"])
	deployID, v1inst := deployed.Command, deployed.To
	if _, err := r.sim.WaitHover(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	t.Run("refused", func(t *testing.T) {
		_, otherKey, _ := command.GenerateKey()
		v2 := r.refs["v2"] // never pulled in this test: a command that names it must not fetch it
		missing := r.reg.Host + "/flight@" + godigest.FromString("no such image").String()
		cases := []struct {
			name    string
			payload func() []byte
			want    string // in the refusal's error
			image   string // the image named; nothing of it beyond v1's blobs may be in containerd
			fetched int64  // bytes the refusal reports: what was read to decide
		}{
			{"unsigned", func() []byte {
				var m map[string]any
				json.Unmarshal(r.sign(r.command(command.KindUpdate, v2), nil), &m)
				delete(m, "sig")
				b, _ := json.Marshal(m)
				return b
			}, "unsigned", v2, 0},
			{"wrong key", func() []byte { return r.sign(r.command(command.KindUpdate, v2), otherKey) }, "signature", v2, 0},
			{"expired", func() []byte {
				c := r.command(command.KindUpdate, v2)
				c.Issued, c.Expires = c.Issued.Add(-3*time.Minute), c.Issued.Add(-time.Minute)
				return r.sign(c, nil)
			}, "expired", v2, 0},
			{"replayed", func() []byte { return r.sent[deployID] }, "replayed", "", 0},
			{"malformed JSON", func() []byte { return []byte(`{"id":"m1","kind":`) }, "malformed", "", 0},
			{"oversized", func() []byte {
				return []byte(`{"id":"big","image":"` + strings.Repeat("x", command.MaxSize) + `"}`)
			}, "too large", "", 0},
			{"digest not in the registry", func() []byte { return r.sign(r.command(command.KindUpdate, missing), nil) },
				"not found", missing, 0},
			{"image without this platform", func() []byte { return r.sign(r.command(command.KindUpdate, other), nil) },
				"no variant for this platform", other, r.metaBytes(t, "v3-"+otherArch(), false)},
			{"incompatible state schema", func() []byte { return r.sign(r.command(command.KindUpdate, schema2), nil) },
				`candidate accepts state schemas [flight.state/2], owner ` + v1inst + ` publishes "flight.state/1"`,
				schema2, r.metaBytes(t, "v3-schema2", true)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				from := mono.Now()
				payload := tc.payload()
				var c struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(payload, &c) != nil || len(payload) > command.MaxSize {
					c.ID = "" // refused before its id is known
				}
				r.publish(payload)
				evs := r.finalEvents(c.ID, 30*time.Second)
				e := evs[len(evs)-1]
				t.Logf("refused: %s (%d bytes fetched)", e.Error, e.Bytes)
				if len(evs) != 1 || e.Phase != "refused" || !strings.Contains(e.Error, tc.want) {
					t.Fatalf("events %+v, want one refusal mentioning %q", evs, tc.want)
				}
				if e.Bytes != tc.fetched {
					t.Errorf("the refusal reports %d bytes fetched, want %d", e.Bytes, tc.fetched)
				}
				if tc.image != "" {
					st.nothingOf(t, tc.image, r.idx[versionOf(r, tc.image)], r.idx["v1"])
				}
				r.onlyOneRunning(v1inst)
				time.Sleep(300 * time.Millisecond)
				r.flownBy(t, from, v1inst)
			})
		}
	})

	t.Run("candidate crashes at start", func(t *testing.T) {
		from := mono.Now()
		id := r.send(command.KindUpdate, crash)
		evs := r.finalEvents(id, 120*time.Second)
		e := evs[len(evs)-1]
		t.Logf("%s: %s after phases %v", e.Outcome, e.Error, phases(evs))
		if e.Phase != "result" || e.Outcome != "aborted" || slices.Contains(phases(evs), "cutover") {
			t.Fatalf("result %+v after %v, want aborted before any cut-over", e, phases(evs))
		}
		// The runtime reports the exit: the abort says so, at once, rather
		// than waiting out the sync timeout.
		if !strings.Contains(e.Error, "exited while shadowing (exit code 1)") {
			t.Errorf("the abort's reason %q does not name the candidate's exit", e.Error)
		}
		if log := awaitLog(t, r.cfg.LogDir, e.To, "fault crash"); !strings.Contains(log, "fault crash") {
			t.Errorf("the candidate %s did not crash at start; its log:\n%s", e.To, log)
		}
		r.onlyOneRunning(v1inst)                                        // the crashed candidate's container is gone
		st.nothingOf(t, crash, r.idx[versionOf(r, crash)], r.idx["v1"]) // and its image
		r.stillOwner(t, v1inst, r.refs["v1"])
		time.Sleep(time.Second)
		r.flownBy(t, from, v1inst)
	})

	t.Run("candidate exits in probation", func(t *testing.T) {
		cand := journal.NewRelease("flight", exit, "v3-exit", nil, time.Now()).ID // the agent's instance name for it
		from := mono.Now()
		id := r.send(command.KindUpdate, exit)
		evs := r.finalEvents(id, 120*time.Second)
		e := evs[len(evs)-1]
		if rep := r.report(t, from); rep.Crashed || !rep.Airborne || rep.DoubleDrive != 0 {
			t.Fatalf("referee: %+v", rep)
		}
		log := awaitLog(t, r.cfg.LogDir, cand, "fault exit")
		if e.Phase != "result" || e.Outcome != "reverted" || !strings.Contains(log, "fault exit") {
			t.Fatalf("result %+v after %v, want reverted after the candidate exits; its log:\n%s", e, phases(evs), log)
		}
		back := mono.Now()
		t.Logf("%s: %s after phases %v; probation to result %v", e.Outcome, e.Error, phases(evs), between(evs, "probation", "result"))
		if e.To != cand || !slices.Contains(phases(evs), "probation") || !strings.Contains(e.Error, "took back") {
			t.Errorf("result %+v after %v, want %s taken back from in probation", e, phases(evs), cand)
		}
		r.onlyOneRunning(v1inst)
		r.stillOwner(t, v1inst, r.refs["v1"])
		time.Sleep(time.Second)
		rep := r.report(t, from)
		gap := takeBackGap(t, r, from, cand, v1inst)
		t.Logf("v1 -> %s -> v1: writers %v, switches %d, max gap %.1f ms, take-back gap %.1f ms, double drive %d",
			cand, rep.Writers, rep.WriterSwitches, rep.MaxGapMs, gap, rep.DoubleDrive)
		if !slices.Equal(rep.Writers, []string{v1inst, cand}) || rep.WriterSwitches != 2 || rep.Takebacks != 1 || rep.FalseTakebacks != 0 {
			t.Fatalf("referee over the update: %+v, want %s, %s, then %s again", rep, v1inst, cand, v1inst)
		}
		r.flownBy(t, back, v1inst)
	})
}

// otherArch is an image platform that is not this host's.
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// versionOf is the version the rig pushed ref as ("" if none).
func versionOf(r *agentRig, ref string) string {
	for v, x := range r.refs {
		if x == ref {
			return v
		}
	}
	return ""
}

// metaBytes is the size of version's index, plus, with host, this host's
// manifest and config: what the agent reads to refuse it.
func (r *agentRig) metaBytes(t *testing.T, version string, host bool) int64 {
	t.Helper()
	idx := r.idx[version]
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(raw))
	if !host {
		return n
	}
	img, err := build.Image(idx, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	c, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return n + int64(len(m)+len(c))
}

// finalEvents collects the events of command id ("" = of no command)
// until the one that ends it.
func (r *agentRig) finalEvents(id string, timeout time.Duration) []Event {
	r.t.Helper()
	var evs []Event
	deadline := time.After(timeout)
	for {
		select {
		case msg := <-r.events:
			var e Event
			json.Unmarshal(msg.Payload, &e)
			if e.Command != id {
				r.t.Logf("event of another command: %s %s %s", e.Command, e.Phase, e.Error)
				continue
			}
			evs = append(evs, e)
			if e.Final() {
				return evs
			}
		case <-deadline:
			r.t.Fatalf("command %q: no final event within %v (events %+v)", id, timeout, evs)
		}
	}
}

func phases(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Phase)
	}
	return out
}

// between is the wall time from the first event in phase a to the first
// in phase b.
func between(evs []Event, a, b string) time.Duration {
	var ta, tb time.Time
	for _, e := range evs {
		t, _ := time.Parse(time.RFC3339Nano, e.Time)
		if e.Phase == a && ta.IsZero() {
			ta = t
		}
		if e.Phase == b && tb.IsZero() {
			tb = t
		}
	}
	return tb.Sub(ta)
}

// report is the referee's report from from to now, truncation refused.
func (r *agentRig) report(t *testing.T, from int64) referee.Report {
	t.Helper()
	rep, err := r.sim.Report(context.Background(), from, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Truncated {
		t.Fatalf("the referee's log does not cover the window: %+v", rep)
	}
	return rep
}

// flownBy checks the referee from from to now: writer alone drove the
// motors, airborne, no crash, no double drive.
func (r *agentRig) flownBy(t *testing.T, from int64, writer string) {
	t.Helper()
	rep := r.report(t, from)
	if rep.Crashed || !rep.Airborne || rep.DoubleDrive != 0 || !slices.Equal(rep.Writers, []string{writer}) {
		t.Fatalf("referee over %.1f s: %+v, want %s alone flying", rep.Seconds, rep, writer)
	}
}

// takeBackGap is the time between the candidate's last motor update and
// the standby's first one after it, in ms.
func takeBackGap(t *testing.T, r *agentRig, from int64, cand, standby string) float64 {
	t.Helper()
	ws, err := r.sim.Writes(context.Background(), from, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, w := range ws {
		switch {
		case !w.Update || w.Refused:
		case w.Writer == cand:
			last = w.T
		case w.Writer == standby && last != 0:
			return float64(w.T-last) / 1e6
		}
	}
	t.Fatalf("no take-back by %s after %s in the referee's log", standby, cand)
	return 0
}

// stillOwner checks the journal on disk and the retained state: image is
// committed, inst owns the hardware, no update is in progress.
func (r *agentRig) stillOwner(t *testing.T, inst, image string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.cfg.StateDir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js journal.State
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if js.Owner["flight"] != inst || js.Committed["flight"].Image != image || js.Update != nil {
		t.Errorf("journal: owner %q, committed %q, update %+v; want %s of %s, none", js.Owner["flight"], js.Committed["flight"].Image, js.Update, inst, image)
	}
	s := r.stateAfterUpdate(t)
	if s.Owner["flight"] != inst || s.Committed["flight"] != image {
		t.Errorf("reported state %+v, want %s of %s", s, inst, image)
	}
}

// stateAfterUpdate is the first retained state with no update in progress
// after one with an update in progress.
func (r *agentRig) stateAfterUpdate(t *testing.T) StateReport {
	t.Helper()
	updating := false
	deadline := time.After(30 * time.Second)
	for {
		select {
		case msg := <-r.states:
			var s StateReport
			if json.Unmarshal(msg.Payload, &s) != nil {
				continue
			}
			if s.Updating != "" {
				updating = true
			} else if updating {
				return s
			}
		case <-deadline:
			t.Fatal("no state reported after the update")
		}
	}
}

// awaitLog waits up to 10 s for want in instance id's container log
// (containerd's shim copies the output on its own time, which can be after
// the agent saw the exit) and returns the log.
func awaitLog(t *testing.T, dir, id, want string) string {
	t.Helper()
	var log string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if log = readLog(t, dir, id, false); strings.Contains(log, want) {
			break
		}
	}
	return log
}

// readLog returns container id's log ("" if it has none, an error if
// must).
func readLog(t *testing.T, dir, id string, must bool) string {
	t.Helper()
	b, err := os.ReadFile(containers.LogFile(dir, id))
	if err != nil && (must || !errors.Is(err, fs.ErrNotExist)) {
		t.Errorf("container log: %v", err)
	}
	return string(b)
}

// store is a view of containerd's image and content stores in the test
// namespace.
type store struct {
	c   *client.Client
	ctx context.Context
}

func openStore(t *testing.T) *store {
	t.Helper()
	c, err := client.New(containers.DefaultSocket, client.WithDefaultNamespace(testNamespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &store{c: c, ctx: namespaces.WithNamespace(context.Background(), testNamespace)}
}

func (s *store) remove(t *testing.T, ref string) {
	t.Helper()
	rt, err := containers.Open(s.ctx, containers.Config{Namespace: testNamespace, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.RemoveImage(s.ctx, ref); err != nil {
		t.Fatal(err)
	}
}

// nothingOf checks that containerd has no image record of ref and none of
// the blobs of idx (index, manifests, configs, layers) that kept does not
// share.
func (s *store) nothingOf(t *testing.T, ref string, idx, kept v1.ImageIndex) {
	t.Helper()
	if _, err := s.c.ImageService().Get(s.ctx, ref); !errdefs.IsNotFound(err) {
		t.Errorf("image record of %s: %v, want none", ref, err)
	}
	if idx == nil {
		return
	}
	keep := blobsOf(t, kept)
	for d := range blobsOf(t, idx) {
		if keep[d] {
			continue
		}
		_, err := s.c.ContentStore().Info(s.ctx, godigest.Digest(d))
		if !errdefs.IsNotFound(err) {
			t.Errorf("blob %s of the refused %s is in containerd (%v)", d, ref, err)
		}
	}
}

// blobsOf lists the digests of an index and everything it references.
func blobsOf(t *testing.T, idx v1.ImageIndex) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	must := func(h v1.Hash, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out[h.String()] = true
	}
	must(idx.Digest())
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		must(img.Digest())
		must(img.ConfigName())
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			must(l.Digest())
		}
	}
	return out
}
