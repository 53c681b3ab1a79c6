package rig

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/skyswap/skyswap/hw/mono"
	"golang.org/x/sys/unix"
)

// The latency probe measures what the machine itself costs a real-time
// thread: on each CPU, a thread under SCHED_FIFO at the top priority, with
// nothing else to do, wakes on a 1 ms grid and reports each wake-up that
// came late. A motor gap the probe saw too, at the same time, is the
// kernel's or the hypervisor's, not the flight's or the hand-over's
// (cyclictest measures the same). It runs as a process of its own
// (RunLatencyProbe, behind `skyswap-bench latency-probe`) that allocates
// nothing while it runs, so no garbage collection pauses it.

const (
	probePeriod   = int64(time.Millisecond)
	probePriority = 99                            // above every thread of the flight, the simulator and the stack
	stallMin      = int64(200 * time.Microsecond) // wake-ups later than this are reported
)

// RunLatencyProbe is the probe process's body: on each CPU, a thread
// pinned there under SCHED_FIFO at priority 99 writes "<scheduled ns>
// <late ns>\n" (CLOCK_MONOTONIC) to out for each late wake-up, one
// write(2) a line, until ctx is done or out fails. One thread per CPU,
// because a machine stalls a CPU at a time (a hypervisor descheduling one
// vCPU): a single thread saw nothing of a stall on the other CPU.
//
// The threads sleep, read the clock and write with raw system calls
// (rawSleep, rawWriter), which Go's scheduler never sees: a thread back
// from an ordinary one spins in exitsyscall while another thread holds
// its scan bit (sysmon, or the collector scanning its stack), at priority
// 99, and nothing below runs on that CPU until the kernel's real-time
// throttling lets the ordinary holder go (soaks saw 946 and 956 ms), or,
// with real-time helpers, ever (a soak hung). So the process's other
// threads stay ordinary (mono.Helpers says why). It never collects (its
// loop allocates nothing, so its heap never grows), and no collection
// pauses it.
func RunLatencyProbe(ctx context.Context, out *os.File) error {
	mono.ReserveProcs(0) // each pinned thread keeps a P through its sleeps
	debug.SetGCPercent(-1)
	w := rawWriter(out.Fd())
	var allowed unix.CPUSet // the CPUs this process may run on
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("latency probe: CPUs: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, allowed.Count())
	for cpu := range len(allowed) * 64 {
		if allowed.IsSet(cpu) {
			go func() { errs <- probeCPU(ctx, w, cpu) }()
		}
	}
	err := <-errs // the first to end ends them all
	cancel()
	for range allowed.Count() - 1 {
		<-errs
	}
	return err
}

// probeCPU runs probeLoop on a thread pinned to cpu.
func probeCPU(ctx context.Context, w io.Writer, cpu int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("latency probe: pin a thread to CPU %d: %w", cpu, err)
	}
	if err := mono.RealTime(probePriority); err != nil {
		return fmt.Errorf("latency probe: %w", err)
	}
	return probeLoop(ctx, w, rawSleep)
}

// probeLoop wakes on the 1 ms grid (sleep returns the clock before and
// after it slept) and reports late wake-ups. A wake-up is judged only
// when the thread was asleep before it was due: if it came to sleep late,
// what held it was its own process (Go preempts the thread now and then,
// after it wrote, and gets it back through another thread), not the
// machine.
func probeLoop(ctx context.Context, w io.Writer, sleep func(until int64) (before, after int64)) error {
	buf := make([]byte, 0, 64)
	_, t := sleep(0)
	next := t - t%probePeriod + probePeriod
	for ctx.Err() == nil {
		before, t := sleep(next)
		if late := t - next; before < next && late > stallMin {
			buf = strconv.AppendInt(buf[:0], next, 10)
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, late, 10)
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		next += probePeriod
		if next <= t { // a stall covers the wake-ups it skipped
			next = t - t%probePeriod + probePeriod
		}
	}
	return nil
}

// rawSleep sleeps until CLOCK_MONOTONIC reaches until (ns) and returns the
// clock just before and just after. Its system calls are raw, unseen by
// Go's scheduler: a thread in an ordinary one lends its goroutine's scan
// bit to sysmon on every pass, and one that comes back meanwhile spins in
// exitsyscall until sysmon lets go. The probe's threads spin at priority
// 99, so when one preempted sysmon on its own CPU, it spun there for
// 946 ms (a soak's trace), the flight's loop and drone-sim's bus threads
// left to the other CPU, until the kernel's real-time throttling ran
// sysmon. nosplit: no preemption between the clock and the sleep.
//
//go:nosplit
func rawSleep(until int64) (before, after int64) {
	before = rawNow()
	req := unix.Timespec{Sec: until / 1e9, Nsec: until % 1e9}
	for until > before {
		_, _, e := syscall.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME,
			uintptr(unsafe.Pointer(&req)), 0, 0, 0)
		if e != syscall.EINTR { // a signal (Go's preemption) cuts it short
			break
		}
	}
	return before, rawNow()
}

// rawNow reads CLOCK_MONOTONIC (ns) with a raw clock_gettime(2).
//
//go:nosplit
func rawNow() int64 {
	var ts unix.Timespec
	syscall.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Sec*1e9 + ts.Nsec
}

// rawWriter writes to a file descriptor with raw write(2) and nothing
// else. os.File holds a lock across each write: a CPU stalled while its
// thread held it would stall the other CPU's thread too, and the probe
// would report a stall that CPU never had. Raw, as rawSleep says why. A
// line is shorter than PIPE_BUF, so a pipe takes each whole, never
// interleaved.
type rawWriter uintptr

func (fd rawWriter) Write(b []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return int(n), e
	}
}

// LatencyProbe is a running probe process and what it reported.
type LatencyProbe struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stalls []probeStall // in time order
	done   chan struct{}
}

type probeStall struct{ at, late int64 }

// StartLatencyProbe runs the probe command (`skyswap-bench latency-probe`)
// and collects what it reports. It needs root (SCHED_FIFO).
func StartLatencyProbe(command []string) (*LatencyProbe, error) {
	if len(command) == 0 {
		return nil, fmt.Errorf("rig: latency probe: no command")
	}
	p := &LatencyProbe{cmd: exec.Command(command[0], command[1:]...), done: make(chan struct{})}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("rig: latency probe: %w", err)
	}
	var stderr strings.Builder
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("rig: latency probe: %w", err)
	}
	go p.collect(out)
	// A probe that cannot take SCHED_FIFO exits at once.
	select {
	case <-p.done:
		p.cmd.Wait()
		return nil, fmt.Errorf("rig: latency probe %s exited: %s", command[0], strings.TrimSpace(stderr.String()))
	case <-time.After(200 * time.Millisecond):
	}
	return p, nil
}

func (p *LatencyProbe) collect(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s, ok := parseStall(sc.Text())
		if !ok {
			continue
		}
		p.mu.Lock()
		// The CPUs' threads report in about time order, not exactly.
		i, _ := slices.BinarySearchFunc(p.stalls, s.at, func(x probeStall, t int64) int { return cmp.Compare(x.at, t) })
		p.stalls = slices.Insert(p.stalls, i, s)
		p.mu.Unlock()
	}
}

func parseStall(line string) (probeStall, bool) {
	a, b, ok := strings.Cut(line, " ")
	at, err1 := strconv.ParseInt(a, 10, 64)
	late, err2 := strconv.ParseInt(b, 10, 64)
	return probeStall{at, late}, ok && err1 == nil && err2 == nil
}

// MaxMs is the latest wake-up the probe had scheduled in [from, to)
// (CLOCK_MONOTONIC ns), in ms; 0 when none was later than stallMin.
func (p *LatencyProbe) MaxMs(from, to int64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, _ := slices.BinarySearchFunc(p.stalls, from, func(s probeStall, t int64) int { return cmp.Compare(s.at, t) })
	var worst int64
	for ; i < len(p.stalls) && p.stalls[i].at < to; i++ {
		worst = max(worst, p.stalls[i].late)
	}
	return float64(worst) / 1e6
}

// DuringMs is the longest stall, in ms, that overlaps [from, to)
// (CLOCK_MONOTONIC ns): a stall runs from its scheduled wake-up to the
// late one. A flight gap the machine stalled through is the kernel's or
// the hypervisor's; 0 when none overlaps.
func (p *LatencyProbe) DuringMs(from, to int64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var worst int64
	for _, s := range p.stalls {
		if s.at < to && s.at+s.late > from {
			worst = max(worst, s.late)
		}
	}
	return float64(worst) / 1e6
}

// Stop ends the probe process.
func (p *LatencyProbe) Stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
	<-p.done
}
