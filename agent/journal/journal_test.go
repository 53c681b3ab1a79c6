package journal

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func rel(v string) Release {
	return NewRelease("flight", "reg/flight@sha256:"+v, v, []string{"B=2", "A=1"}, now)
}

func TestReleaseID(t *testing.T) {
	a := NewRelease("flight", "img@sha256:1", "v1", []string{"B=2", "A=1"}, now)
	b := NewRelease("flight", "img@sha256:1", "v1", []string{"A=1", "B=2"}, now.Add(time.Hour))
	c := NewRelease("flight", "img@sha256:1", "v1", []string{"A=1", "B=3"}, now)
	if a.ID != b.ID || a.ID == c.ID || !slices.Equal(a.Env, []string{"A=1", "B=2"}) {
		t.Fatalf("ids %s %s %s, env %v: the id is the image and config, nothing else", a.ID, b.ID, c.ID, a.Env)
	}
}

func TestLifecycleSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v1 := Instance{ID: "flight-v1", Release: rel("v1")}
	v2 := Instance{ID: "flight-v2", Release: rel("v2")}
	if err := j.Deploy(v1); err != nil {
		t.Fatal(err)
	}
	if err := j.Begin(Update{Command: "c1", App: "flight", Phase: "pull", From: v1, To: v2}); err != nil {
		t.Fatal(err)
	}
	if err := j.Begin(Update{Command: "c2", App: "flight"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Begin: %v, want ErrBusy", err)
	}
	if err := j.Phase("probation"); err != nil {
		t.Fatal(err)
	}
	// A restart mid-update reads the same record.
	j2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := j2.State()
	if st.Update == nil || st.Update.Phase != "probation" || st.Owner["flight"] != "flight-v1" {
		t.Fatalf("reopened: %+v", st)
	}
	if dropped, err := j2.Commit(); err != nil || dropped != nil {
		t.Fatalf("commit: dropped %v, %v", dropped, err)
	}
	st = j2.State()
	if st.Update != nil || st.Owner["flight"] != "flight-v2" || st.Committed["flight"].ID != v2.Release.ID || st.Previous["flight"].ID != v1.Release.ID {
		t.Fatalf("after commit: %+v", st)
	}
	// An update that does not commit leaves owner and releases alone.
	if err := j2.Begin(Update{Command: "c3", App: "flight", From: v2, To: Instance{ID: "flight-v3", Release: rel("v3")}}); err != nil {
		t.Fatal(err)
	}
	if err := j2.End(); err != nil {
		t.Fatal(err)
	}
	if st2 := j2.State(); st2.Update != nil || st2.Owner["flight"] != "flight-v2" || st2.Committed["flight"].ID != v2.Release.ID {
		t.Fatalf("after end: %+v", st2)
	}
	if err := j2.Phase("x"); err == nil {
		t.Fatal("Phase with no update in progress")
	}
	// A third committed release pushes v1 out of "previous": its image may go.
	v3 := Instance{ID: "flight-v3", Release: rel("v3")}
	if err := j2.Begin(Update{Command: "c4", App: "flight", From: v2, To: v3}); err != nil {
		t.Fatal(err)
	}
	dropped, err := j2.Commit()
	if err != nil || dropped == nil || dropped.ID != v1.Release.ID {
		t.Fatalf("commit of v3 dropped %v, %v; want v1", dropped, err)
	}
}

func TestCorruptRecordRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "journal.json"), []byte("{not json"), 0o600)
	if _, err := Open(dir); err == nil {
		t.Fatal("opened a corrupt journal")
	}
}

func TestStateIsACopy(t *testing.T) {
	j, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j.Deploy(Instance{ID: "a", Release: rel("v1")})
	st := j.State()
	st.Owner["flight"] = "mutated"
	if j.State().Owner["flight"] != "a" {
		t.Fatal("State shares maps with the journal")
	}
}

func TestRecover(t *testing.T) {
	v1 := Instance{ID: "flight-v1", Release: rel("v1")}
	v2 := Instance{ID: "flight-v2", Release: rel("v2")}
	idle := State{Owner: map[string]string{"flight": "flight-v1"}}
	mid := func(phase string) State {
		return State{Owner: map[string]string{"flight": "flight-v1"},
			Update: &Update{App: "flight", Phase: phase, From: v1, To: v2}}
	}
	cases := []struct {
		name    string
		st      State
		running []string
		flying  string
		keep    string
		remove  []string
		commit  bool
		outcome bool
	}{
		{"steady", idle, []string{"flight-v1"}, "flight-v1", "flight-v1", nil, false, false},
		{"stray instance", idle, []string{"flight-v1", "flight-x"}, "flight-v1", "flight-v1", []string{"flight-x"}, false, false},
		{"killed while shadowing", mid("shadow"), []string{"flight-v1", "flight-v2"}, "flight-v1", "flight-v1", []string{"flight-v2"}, false, true},
		{"killed in probation", mid("probation"), []string{"flight-v1", "flight-v2"}, "flight-v2", "flight-v2", []string{"flight-v1"}, true, true},
		{"no frames seen: the recorded owner", mid("cutover"), []string{"flight-v1", "flight-v2"}, "", "flight-v1", []string{"flight-v2"}, false, true},
		{"candidate gone already", mid("probation"), []string{"flight-v1"}, "", "flight-v1", nil, false, true},
		{"nothing runs", mid("prepare"), nil, "", "", nil, false, true},
		{"record lost: adopt the flying one", State{}, []string{"flight-v1"}, "flight-v1", "flight-v1", nil, false, false},
		{"record lost: adopt the only one", State{}, []string{"flight-v1"}, "", "flight-v1", nil, false, false},
		{"record lost: the flying one of two", State{}, []string{"flight-v1", "flight-v2"}, "flight-v2", "flight-v2", []string{"flight-v1"}, false, false},
		{"record lost, no frames, two run: cannot tell", State{}, []string{"flight-v1", "flight-v2"}, "", "", nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Recover(tc.st, "flight", tc.running, tc.flying)
			if d.Keep != tc.keep || !slices.Equal(d.Remove, tc.remove) || d.Commit != tc.commit || (d.Outcome != "") != tc.outcome {
				t.Fatalf("Recover = %+v", d)
			}
			if adopt := tc.keep != "" && tc.st.Owner["flight"] != tc.keep && !tc.commit; d.Adopt != adopt {
				t.Fatalf("Adopt = %v, want %v", d.Adopt, adopt)
			}
			if unknown := tc.keep == "" && len(tc.running) > 1; (d.Unknown != nil) != unknown {
				t.Fatalf("Unknown = %v", d.Unknown)
			}
		})
	}
}
