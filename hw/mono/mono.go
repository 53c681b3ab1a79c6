// Package mono reads and sleeps on CLOCK_MONOTONIC, the clock every process on
// the drone shares. The flight loop's tick grid, the referee's timestamps and
// the hand-over's cut-over tick are all expressed on it, so two processes agree
// on "tick N" without talking to each other.
package mono

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Now returns CLOCK_MONOTONIC in nanoseconds.
func Now() int64 {
	var ts unix.Timespec
	// CLOCK_MONOTONIC cannot fail on Linux with a valid pointer.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// SleepUntil blocks the calling thread until CLOCK_MONOTONIC reaches t
// nanoseconds. It uses an absolute-time clock_nanosleep, so the error does not
// accumulate over a loop of ticks. It returns at once if t is in the past.
func SleepUntil(t int64) {
	ts := unix.NsecToTimespec(t)
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// Since returns the time elapsed since t (nanoseconds on CLOCK_MONOTONIC).
func Since(t int64) time.Duration { return time.Duration(Now() - t) }

// RealTime locks the calling goroutine to its OS thread for the rest of
// the goroutine's life and puts the thread under SCHED_FIFO at priority
// prio (1..99), so that it preempts ordinary work the moment it wakes.
// The lock is never undone, whatever the caller unlocks: when the
// goroutine ends, Go ends the thread with it. A real-time thread handed
// back to the scheduler runs ordinary goroutines (a collector's mark
// worker, a report) above the flight; drone-sim's bus threads did, one
// more at each hand-over. It needs CAP_SYS_NICE (root, or the capability
// granted to the container); without it, it returns an error and the
// thread keeps its ordinary policy, so callers log and carry on.
func RealTime(prio int) error {
	runtime.LockOSThread()
	if err := setFIFO(0, prio, resetOnFork); err != nil {
		return fmt.Errorf("%w (grant CAP_SYS_NICE for real-time scheduling)", err)
	}
	return nil
}

// Priority moves the calling thread, which RealTime made real-time, to
// SCHED_FIFO priority prio (1..99). A thread that is not real-time gets an
// error and is left as it is: making it real-time here would skip
// RealTime's lock.
func Priority(prio int) error {
	cur, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return fmt.Errorf("mono: read the thread's scheduling: %w", err)
	}
	if cur.Policy != unix.SCHED_FIFO {
		return errors.New("mono: the calling thread is not real-time: call RealTime first")
	}
	return setFIFO(0, prio, resetOnFork)
}

// resetOnFork: threads the Go runtime spawns from a locked real-time
// thread (to run other goroutines) must not inherit its priority.
const resetOnFork = unix.SCHED_FLAG_RESET_ON_FORK

// HelperPriority is the SCHED_FIFO priority a real-time process gives its
// other threads (Helpers): the lowest, so they wait for every control
// loop, bus and physics thread, and preempt every ordinary task.
const HelperPriority = 1

// Helpers puts every thread of the process under SCHED_FIFO at prio, and
// with them every thread Go starts later (a thread inherits its creator's
// policy; RealTime's threads do not pass theirs on). Threads already
// real-time (RealTime's) keep their priority; prio is at most theirs
// (see the end for which). It needs CAP_SYS_NICE, as RealTime does; where
// a cgroup budgets real-time time, the helpers spend the container's
// budget too.
//
// Why: a locked real-time goroutine waits on the process's other threads
// in two ways, and under ordinary scheduling those wait behind any busy
// process on the machine (a dronectl, a container starting, a CPU hog):
//   - It goes back to Go's scheduler whenever Go preempts it (sysmon does
//     every 10 ms it has not passed through, the collector to scan its
//     stack), a system call returns without a P, or it blocks on a lock,
//     and runs again only when another thread runs the scheduler. The
//     flight loop waited up to 10 ms for one on the 2-vCPU VM, most often
//     as a candidate started; drone-sim's bus threads up to 18 ms.
//   - A system call that returns while sysmon or the collector holds the
//     goroutine's scan bit (sysmon takes it on every pass to look at a P
//     in a system call) spins in exitsyscall until the holder lets go. A
//     real-time spinner keeps an ordinary holder off its own CPU:
//     drone-sim's bus thread spun 85 ms beside a CPU hog, and the flight
//     it served missed 21 ticks. A real-time holder moves to the other
//     CPU at once.
//
// Helpers below the real-time threads suit a process with one of those
// (the flight app's loop): the spinner holds one CPU and the holder runs
// on another. Where several could spin at once, one on each CPU (the
// latency probe's pinned threads), helpers below them would never run
// again, and the spinners never stop. A process with several real-time
// threads (drone-sim: physics and a bus thread a client) gives its helpers
// the same priority as those: at one priority no thread preempts another
// (a spinner cannot have pushed its holder off the CPU), and each of Go's
// spin loops ends in sched_yield, which under SCHED_FIFO hands the CPU to
// a waiting thread of the same priority.
func Helpers(prio int) error {
	seen := map[int]bool{}
	for {
		// A thread started meanwhile by one not yet changed inherits the
		// old policy: list again until a pass finds none new.
		es, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("mono: list the process's threads: %w", err)
		}
		changed := 0
		for _, e := range es {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || seen[tid] {
				continue
			}
			seen[tid], changed = true, changed+1
			if cur, err := unix.SchedGetAttr(tid, 0); err == nil && cur.Policy == unix.SCHED_FIFO {
				continue
			}
			if err := setFIFO(tid, prio, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("%w (thread %d)", err, tid)
			}
		}
		if changed == 0 {
			return nil
		}
	}
}

// setFIFO puts thread tid (0: the calling one) under SCHED_FIFO at prio,
// with the sched_setattr flags given.
func setFIFO(tid, prio int, flags uint64) error {
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(prio), Flags: flags}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		return fmt.Errorf("mono: SCHED_FIFO priority %d: %w", prio, err)
	}
	return nil
}

// ReserveProcs raises GOMAXPROCS to at least n and to twice the cores,
// unless the GOMAXPROCS variable sets it. A thread locked for real-time
// work needs a P the moment a system call returns (a bus read, a sleep);
// with one P per core it can wait for one held by an ordinary thread,
// which a busy machine deschedules for tens of milliseconds. Spare Ps cost
// nothing while idle. Call it first thing in main.
func ReserveProcs(n int) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(n, 2*runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	}
}

// Sleep waits for d or until ctx is done, whichever comes first, and
// returns ctx's error in the second case: a wait a driver's start-up or a
// stop request may cut short.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
