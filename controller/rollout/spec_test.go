package rollout

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
)

func TestParseWaves(t *testing.T) {
	for _, tc := range []struct {
		in    string
		split map[int][]int // targets -> wave sizes
		bad   string
	}{
		{in: "1,10%,50%,100%", split: map[int][]int{
			1000: {1, 99, 400, 500}, 20: {1, 1, 8, 10}, 3: {1, 1, 1}, 1: {1}, 0: nil}},
		{in: "100%", split: map[int][]int{7: {7}}},
		{in: "5,100%", split: map[int][]int{3: {3}, 8: {5, 3}}},
		{in: "33.3%,100%", split: map[int][]int{10: {4, 6}}},
		{in: "", bad: "give a number"},
		{in: "1,50%", bad: "end with 100%"},
		{in: "10%,5%,100%", bad: "must grow"},
		{in: "3,2,100%", bad: "must grow"},
		{in: "0,100%", bad: "give a number"},
		{in: "150%", bad: "at most 100%"},
		{in: "x%", bad: "at most 100%"},
	} {
		w, err := ParseWaves(tc.in)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("ParseWaves(%q): %v, want an error saying %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWaves(%q): %v", tc.in, err)
			continue
		}
		if w.String() != tc.in {
			t.Errorf("ParseWaves(%q).String() = %q", tc.in, w)
		}
		for n, want := range tc.split {
			if got := w.split(n); !slices.Equal(got, want) {
				t.Errorf("waves %s over %d drones: %v, want %v", tc.in, n, got, want)
			}
		}
	}
}

func TestThreshold(t *testing.T) {
	for _, tc := range []struct {
		in               string
		failed, executed int
		exceeded         bool
		bad              bool
	}{
		{in: "0", failed: 0, executed: 10, exceeded: false},
		{in: "0", failed: 1, executed: 10, exceeded: true},
		{in: "2", failed: 2, executed: 3, exceeded: false},
		{in: "2", failed: 3, executed: 3, exceeded: true},
		{in: "5%", failed: 1, executed: 20, exceeded: false},
		{in: "5%", failed: 2, executed: 20, exceeded: true},
		{in: "5%", failed: 1, executed: 1, exceeded: true},
		{in: "0%", failed: 1, executed: 100, exceeded: true},
		{in: "-1", bad: true},
		{in: "100%", bad: true},
		{in: "five", bad: true},
	} {
		th, err := ParseThreshold(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseThreshold(%q): %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if tc.bad {
			continue
		}
		if th.String() != tc.in {
			t.Errorf("ParseThreshold(%q).String() = %q", tc.in, th)
		}
		if got := th.exceeded(tc.failed, tc.executed); got != tc.exceeded {
			t.Errorf("%s with %d of %d failed: exceeded %v, want %v", tc.in, tc.failed, tc.executed, got, tc.exceeded)
		}
	}
}

func TestSpecCheck(t *testing.T) {
	ok := Spec{Image: "flight:v2", All: true}
	for _, tc := range []struct {
		name  string
		edit  func(*Spec)
		field string // "" = valid
	}{
		{"all", func(*Spec) {}, ""},
		{"list", func(s *Spec) { s.All = false; s.Drones = []string{"d1", "d2"} }, ""},
		{"selector", func(s *Spec) { s.All = false; s.Select = Selector{"site": "a"} }, ""},
		{"pinned", func(s *Spec) { s.Image = "reg:5000/flight:v2@sha256:" + strings.Repeat("a", 64) }, ""},
		{"no image", func(s *Spec) { s.Image = "" }, "image"},
		{"bad digest", func(s *Spec) { s.Image = "flight@sha256:12" }, "image"},
		{"no target", func(s *Spec) { s.All = false }, "drones"},
		{"two targets", func(s *Spec) { s.Drones = []string{"d1"} }, "drones"},
		{"bad drone", func(s *Spec) { s.All = false; s.Drones = []string{"d/1"} }, "drones"},
		{"drone twice", func(s *Spec) { s.All = false; s.Drones = []string{"d1", "d1"} }, "drones"},
		{"bad strategy", func(s *Spec) { s.Strategy = "fast" }, "strategy"},
		{"ttl too long", func(s *Spec) { s.TTL = Duration(time.Hour); s.Timeout = Duration(2 * time.Hour) }, "ttl"},
		{"timeout under ttl", func(s *Spec) { s.TTL = Duration(time.Minute); s.Timeout = Duration(30 * time.Second) }, "timeout"},
		{"bad on_abort", func(s *Spec) { s.OnAbort = "panic" }, "on_abort"},
		{"negative parallel", func(s *Spec) { s.Parallel = -1 }, "parallel"},
		{"negative min_done", func(s *Spec) { s.MinDone = -1 }, "min_done"},
		{"bad waves", func(s *Spec) { s.Waves = Waves{{Count: 2}} }, "waves"},
	} {
		s := ok
		tc.edit(&s)
		err := s.Check()
		var se *SpecError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &se) || se.Field != tc.field):
			t.Errorf("%s: %v, want a *SpecError on %s", tc.name, err, tc.field)
		}
	}
}

// TestSpecJSON: the API body takes the flags' text forms.
func TestSpecJSON(t *testing.T) {
	in := `{"image":"flight:v2","select":"site=field-a","waves":"1,50%,100%","max_failed":"5%","min_done":10,` +
		`"timeout":"5m","ttl":"90s","soak":"30s","on_abort":"rollback"}`
	var s Spec
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.Select["site"] != "field-a" || s.Waves.String() != "1,50%,100%" || s.MaxFailed.String() != "5%" ||
		s.ttl() != 90*time.Second || s.timeout() != 5*time.Minute || time.Duration(s.Soak) != 30*time.Second || s.OnAbort != Rollback {
		t.Errorf("decoded %+v", s)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Spec
	if err := json.Unmarshal(out, &back); err != nil || back.Waves.String() != s.Waves.String() || back.MaxFailed != s.MaxFailed {
		t.Errorf("round trip %s: %+v, %v", out, back, err)
	}
	for _, bad := range []string{`{"waves":"1,2"}`, `{"max_failed":"x"}`, `{"select":"a"}`, `{"ttl":"soon"}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestCommandID(t *testing.T) {
	long := strings.Repeat("d", 64)
	for _, tc := range []struct {
		rollout, kind, drone string
	}{
		{"ro-1a2b3c4d", kindUpdate, "d1"},
		{"ro-1a2b3c4d", kindRollback, "drone-0999"},
		{"ro-1a2b3c4d", kindUpdate, long},
	} {
		id := CommandID(tc.rollout, tc.kind, tc.drone)
		if _, err := signID(id); err != nil {
			t.Errorf("CommandID(%s, %s, %s) = %q: %v", tc.rollout, tc.kind, tc.drone, id, err)
		}
		if ro, ok := rolloutOf(id); !ok || ro != tc.rollout {
			t.Errorf("rolloutOf(%q) = %q, %v", id, ro, ok)
		}
		if CommandID(tc.rollout, tc.kind, tc.drone) != id {
			t.Errorf("CommandID is not deterministic")
		}
	}
	if CommandID("ro-1", kindUpdate, long) == CommandID("ro-1", kindUpdate, long[1:]+"e") {
		t.Error("two long drone ids give one command id")
	}
	for _, id := range []string{"20250601T120000Z-0123456789ab", "ro-1a2b", "ro-1a2b.x.d1", "deploy-42"} {
		if _, ok := rolloutOf(id); ok {
			t.Errorf("rolloutOf(%q): a rollout's, want not", id)
		}
	}
}

// signID signs a command with id, to check the id is one a drone accepts.
func signID(id string) (command.Command, error) {
	_, priv, err := command.GenerateKey()
	if err != nil {
		return command.Command{}, err
	}
	return command.Sign(command.Command{ID: id, Kind: command.KindStatus, Drone: "d1",
		Issued: time.Unix(1e9, 0), Expires: time.Unix(1e9+60, 0)}, "k1", priv)
}
