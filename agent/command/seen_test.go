package command

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func cmdExpiring(id string, exp time.Time) Command {
	return Command{ID: id, Expires: exp}
}

func openSeen(t *testing.T, path string, clk *clock) *Seen {
	t.Helper()
	s, err := OpenSeen(path)
	if err != nil {
		t.Fatalf("OpenSeen: %v", err)
	}
	s.Now = clk.Now
	return s
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSeenReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen.json")
	clk := &clock{t: t0}
	s := openSeen(t, path, clk)
	c := cmdExpiring("cmd-1", t0.Add(2*time.Minute))

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"first check", func() error { return s.Check(c) }, nil},
		{"check again changes nothing", func() error { return s.Check(c) }, nil},
		{"mark", func() error { return s.Mark(c) }, nil},
		{"check after mark", func() error { return s.Check(c) }, ErrReplayed},
		{"mark again", func() error { return s.Mark(c) }, ErrReplayed},
		{"another id", func() error { return s.Mark(cmdExpiring("cmd-2", t0.Add(time.Minute))) }, nil},
		{"after reopening the file", func() error { return openSeen(t, path, clk).Check(c) }, ErrReplayed},
		{"mark after reopening", func() error { return openSeen(t, path, clk).Mark(c) }, ErrReplayed},
		{"bad id", func() error { return s.Mark(cmdExpiring("../x y", t0.Add(time.Minute))) }, ErrMalformed},
		{"no expiry", func() error { return s.Mark(cmdExpiring("cmd-3", time.Time{})) }, ErrMalformed},
	}
	for _, tt := range tests {
		err := tt.op()
		if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := s.Check(c); !strings.Contains(fmt.Sprint(err), "new id") {
		t.Errorf("replay error %q does not say what to do", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("seen file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestSeenPrunesExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen.json")
	clk := &clock{t: t0}
	s := openSeen(t, path, clk)
	for _, c := range []Command{
		cmdExpiring("old", t0.Add(time.Minute)),
		cmdExpiring("edge", t0.Add(5*time.Minute)),
		cmdExpiring("young", t0.Add(10*time.Minute)),
	} {
		if err := s.Mark(c); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(t0.Add(5 * time.Minute)) // "edge" expires now: dropped too
	if err := s.Mark(cmdExpiring("new", t0.Add(7*time.Minute))); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"ids":{"new":"2025-06-01T12:07:00Z","young":"2025-06-01T12:10:00Z"}}` + "\n"
	if string(data) != want {
		t.Errorf("file\n%s\nwant\n%s", data, want)
	}
	r := openSeen(t, path, clk)
	for id, want := range map[string]error{"old": nil, "edge": nil, "young": ErrReplayed, "new": ErrReplayed} {
		if err := r.Check(cmdExpiring(id, t0.Add(time.Hour))); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("after reopen, Check(%s) = %v, want %v", id, err, want)
		}
	}
}

func TestSeenAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seen.json")
	// A crash between CreateTemp and Rename leaves a temp file; OpenSeen
	// cleans it up. Other files are left alone.
	for _, name := range []string{".seen.json.tmp-123", "other.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{t: t0}
	s := openSeen(t, path, clk)
	for i := range 20 {
		if err := s.Mark(cmdExpiring(fmt.Sprintf("c%d", i), t0.Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(dirNames(t, dir), " "); got != "other.json seen.json" {
		t.Errorf("directory holds %q, want only other.json and seen.json", got)
	}
}

func TestSeenWriteFailureRecordsNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seen.json")
	clk := &clock{t: t0}
	s := openSeen(t, path, clk)
	// A directory where the file was: the rename fails, even for root.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	c := cmdExpiring("c1", t0.Add(time.Minute))
	if err := s.Mark(c); err == nil || errors.Is(err, ErrReplayed) {
		t.Fatalf("Mark over a directory = %v, want a write error", err)
	}
	if err := s.Check(c); err != nil {
		t.Errorf("after a failed Mark, Check = %v, want nil", err)
	}
	if got := dirNames(t, dir); len(got) != 1 {
		t.Errorf("failed write left %v", got)
	}
}

func TestOpenSeenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, msg string
	}{
		{"missing directory", filepath.Join(dir, "nope", "seen.json"), "no such file"},
		{"garbage", write("garbage.json", "{{{"), "corrupt"},
		{"other version", write("v2.json", `{"version":2,"ids":{}}`), "version 2"},
		{"unknown field", write("unk.json", `{"version":1,"ids":{},"x":1}`), "corrupt"},
		{"bad id", write("badid.json", `{"version":1,"ids":{"a/b":"2025-06-01T12:00:00Z"}}`), "bad id"},
		{"bad time", write("badtime.json", `{"version":1,"ids":{"a":"soon"}}`), "bad expiry"},
		{"a directory", dir, "seen list"},
	}
	for _, tt := range tests {
		_, err := OpenSeen(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: OpenSeen = %v, want an error saying %q", tt.name, err, tt.msg)
		}
	}
	// An empty list opens and round-trips.
	p := write("empty.json", `{"version":1,"ids":{}}`)
	if _, err := OpenSeen(p); err != nil {
		t.Errorf("empty list: %v", err)
	}
}

func TestSeenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen.json")
	clk := &clock{t: t0}
	s := openSeen(t, path, clk)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			switch err := s.Mark(cmdExpiring("same", t0.Add(time.Minute))); {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrReplayed):
				t.Errorf("Mark: %v", err)
			}
		})
		wg.Go(func() {
			c := cmdExpiring(fmt.Sprintf("own-%d", i), t0.Add(time.Minute))
			if err := s.Check(c); err != nil {
				t.Errorf("Check: %v", err)
			}
			if err := s.Mark(c); err != nil {
				t.Errorf("Mark: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d concurrent Marks of one id succeeded, want 1", wins.Load())
	}
	r := openSeen(t, path, clk)
	for i := range 16 {
		if err := r.Check(cmdExpiring(fmt.Sprintf("own-%d", i), t0)); !errors.Is(err, ErrReplayed) {
			t.Errorf("own-%d not persisted: %v", i, err)
		}
	}
}

// TestSeenWithVerifier is the agent's path: Parse, Verify, Mark; the same
// message delivered twice (QoS 1) runs once, and again after a restart.
func TestSeenWithVerifier(t *testing.T) {
	_, priv := testKey(t)
	js, err := mustSign(t, baseCommand(), priv).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seen.json")
	clk := &clock{t: t0.Add(time.Minute)}
	v := testVerifier(t, clk.Now())
	v.Now = clk.Now
	accept := func(s *Seen) error {
		c, err := Parse(js)
		if err != nil {
			return err
		}
		if err := v.Verify(c); err != nil {
			return err
		}
		return s.Mark(c)
	}
	s := openSeen(t, path, clk)
	if err := accept(s); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if err := accept(s); !errors.Is(err, ErrReplayed) {
		t.Errorf("redelivery: %v, want ErrReplayed", err)
	}
	if err := accept(openSeen(t, path, clk)); !errors.Is(err, ErrReplayed) {
		t.Errorf("after restart: %v, want ErrReplayed", err)
	}
	clk.Set(t0.Add(2 * time.Minute))
	if err := accept(openSeen(t, path, clk)); !errors.Is(err, ErrExpired) {
		t.Errorf("after expiry: %v, want ErrExpired", err)
	}
}
