package mono

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread, which Go parks for good rather
// than ending: the tests' goroutines run on threads that can end.
func init() { runtime.LockOSThread() }

func TestNowIsMonotonic(t *testing.T) {
	a := Now()
	b := Now()
	if b < a {
		t.Fatalf("Now went backwards: %d then %d", a, b)
	}
}

func TestSleepUntil(t *testing.T) {
	start := Now()
	target := start + 2_000_000 // 2 ms
	SleepUntil(target)
	if got := Now(); got < target {
		t.Fatalf("woke at %d, before the target %d", got, target)
	}
	// A deadline in the past returns at once (bounded generously).
	before := Now()
	SleepUntil(start)
	if d := Since(before); d > 1e9 {
		t.Fatalf("SleepUntil(past) took %v", d)
	}
}

// TestRealTimeThreadEndsWithGoroutine: a thread RealTime made real-time
// never goes back to run other goroutines, even if its goroutine unlocks
// it as callers do; it ends with the goroutine.
func TestRealTimeThreadEndsWithGoroutine(t *testing.T) {
	tids := make(chan int, 1)
	errs := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread() // RealTime's lock outlasts it
		tids <- unix.Gettid()
		errs <- RealTime(1)
	}()
	tid := <-tids
	if err := <-errs; err != nil {
		t.Skipf("no real-time scheduling here (CI runs as root): %v", err)
	}
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(task); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("real-time thread %d lived on after its goroutine ended: it runs other goroutines", tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPriority: a real-time thread moves between priorities; a thread
// that is not real-time is refused and left as it is.
func TestPriority(t *testing.T) {
	type result struct {
		policy, prio uint32
		err          error
	}
	run := func(f func() error) result {
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			err := f()
			a, aerr := unix.SchedGetAttr(0, 0)
			if aerr != nil {
				ch <- result{err: aerr}
				return
			}
			ch <- result{a.Policy, a.Priority, err}
		}()
		return <-ch
	}
	if r := run(func() error { return RealTime(2) }); r.err != nil {
		t.Skipf("no real-time scheduling here (CI runs as root): %v", r.err)
	}
	for _, tc := range []struct {
		name         string
		f            func() error
		policy, prio uint32
		wantErr      bool
	}{
		{"lower", func() error { RealTime(3); return Priority(2) }, unix.SCHED_FIFO, 2, false},
		{"raise", func() error { RealTime(2); return Priority(3) }, unix.SCHED_FIFO, 3, false},
		{"not real-time", func() error { return Priority(2) }, unix.SCHED_NORMAL, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.f)
			if (r.err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", r.err, tc.wantErr)
			}
			if r.policy != tc.policy || r.prio != tc.prio {
				t.Errorf("thread policy %d priority %d, want %d %d", r.policy, r.prio, tc.policy, tc.prio)
			}
		})
	}
}

// TestHelpers: after Helpers(1), every thread of the process is under
// SCHED_FIFO at 1, those Go starts later too, and a RealTime thread keeps
// its own priority. It runs in a child process, which it leaves real-time.
func TestHelpers(t *testing.T) { inChild(t, "helpers", helpersChild) }

// inChild runs child in a child process running this test alone (the
// scheduling it sets stays there) and logs its "<name>: ok" line; the
// child prints "<name>: " and what failed otherwise.
func inChild(t *testing.T, name string, child func()) {
	env := "MONO_CHILD_" + t.Name()
	if os.Getenv(env) == "1" {
		child()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("operation not permitted")) {
		t.Skipf("no real-time scheduling here (CI runs as root): %s", out)
	}
	marker := []byte(name + ": ok")
	if err != nil || !bytes.Contains(out, marker) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	ok := out[bytes.Index(out, marker):]
	t.Logf("%s", ok[:bytes.IndexByte(ok, '\n')])
}

func helpersChild() {
	fail := func(f string, a ...any) { fmt.Printf("helpers: "+f+"\n", a...); os.Exit(1) }
	if err := Helpers(1); err != nil {
		fail("%v", err)
	}
	// Locked goroutines that block keep their threads, so Go starts new
	// ones for the rest: threads born after Helpers.
	before, _ := os.ReadDir("/proc/self/task")
	release := make(chan struct{})
	tids := make(chan int)
	for range 4 {
		go func() {
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-release
		}()
	}
	go func() {
		if err := RealTime(5); err != nil {
			fail("%v", err)
		}
		tids <- -unix.Gettid()
		<-release
	}()
	rt := 0
	for range 5 {
		if tid := <-tids; tid < 0 {
			rt = -tid
		}
	}
	defer close(release)
	es, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fail("%v", err)
	}
	if len(es) <= len(before) {
		fail("no thread started after Helpers: %d then %d", len(before), len(es))
	}
	for _, e := range es {
		var tid int
		fmt.Sscan(e.Name(), &tid)
		a, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		want := uint32(1)
		if tid == rt {
			want = 5
		}
		if err != nil || a.Policy != unix.SCHED_FIFO || a.Priority != want {
			fail("thread %d: policy %d priority %d (%v), want SCHED_FIFO %d", tid, a.Policy, a.Priority, err, want)
		}
	}
	fmt.Printf("helpers: ok, %d threads (%d started after)\n", len(es), len(es)-len(before))
}
