package chaos

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary be its own hog, as skyswap-chaos is:
// re-executed with the hog subcommand it busy-loops instead of testing.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == HogSubcommand {
		if err := RunHog(os.Args[2:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func containsLine(s string, pid int) bool {
	for _, l := range strings.Fields(s) {
		if l == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestHogStartsAndStops: the hogs are written to the cgroup's procs file
// one pid each, busy-loop, and are gone after stop. (A regular file stands
// in for the cgroup here; the integration test uses a container's.)
func TestHogStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := startHog([]string{os.Args[0], HogSubcommand}, dir, 2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pids := h.pids()
	procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, p := range pids {
		if !containsLine(string(procs), p) || !alive(p) {
			t.Errorf("hog %d: in procs %v, alive %v; procs file %q", p, containsLine(string(procs), p), alive(p), procs)
		}
	}
	// Busy: each accumulates CPU time (utime, /proc/<pid>/stat field 14).
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for cpuTicks(t, p) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("hog %d used no CPU in 10 s", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("hog %d alive after stop", p)
		}
	}
}

func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	n, err := strconv.Atoi(f[11]) // utime: field 14 of stat, 12th after the state
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHogEndsByItself: a hog whose parent never stops it ends after -for.
func TestHogEndsByItself(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644)
	h, err := startHog([]string{os.Args[0], HogSubcommand}, dir, 1, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.cmds[0].Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hog exited with %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		h.stop()
		t.Fatal("a 100 ms hog still ran after 30 s")
	}
}

func TestHogWithoutCgroup(t *testing.T) {
	_, err := startHog([]string{os.Args[0], HogSubcommand}, filepath.Join(t.TempDir(), "absent"), 1, time.Second)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "root") {
		t.Fatalf("err = %v, want not-exist saying to run as root", err)
	}
}

func TestRunHogArgs(t *testing.T) {
	if err := RunHog(nil); err == nil || !strings.Contains(err.Error(), "-for 300ms") {
		t.Errorf("RunHog() = %v, want an error asking for -for", err)
	}
	start := time.Now()
	if err := RunHog([]string{"-for", "20ms"}); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("RunHog(-for 20ms) = %v after %v", err, time.Since(start))
	}
}

func TestSpinStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Spin(ctx, time.Hour) // returns at once
}
