package mono

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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
