package containers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skyswap/skyswap/cgroupfs"
)

// Real-time scheduling for a container (Spec.RealTime). A flight loop under
// SCHED_FIFO preempts every ordinary task the moment it wakes, so a busy
// drone (a container starting beside it, any other workload) delays it by
// microseconds instead of the milliseconds a fair share costs. Taking
// SCHED_FIFO needs two grants:
//
//   - CAP_SYS_NICE, as an ambient capability: the app runs as an
//     unprivileged user, whose capabilities are dropped at exec otherwise.
//     It is the only capability any container gets, and only with
//     Spec.RealTime.
//   - Real-time time in its cgroup, where the kernel schedules real-time
//     tasks by group (cgroup v1's cpu.rt_runtime_us, CONFIG_RT_GROUP_SCHED:
//     this development VM). A task in a group without any is refused
//     SCHED_FIFO. The container's group gets Spec.RealTime per second, so a
//     runaway loop is throttled there instead of freezing the drone, and the
//     namespace's group, its parent, exactly what its containers hold (a
//     parent must hold at least the sum of its children). On cgroup v2
//     (Raspberry Pi OS) there is no such budget, and the capability is all.

// rtPeriod is the period Spec.RealTime is a share of: the kernel's default
// real-time period.
const rtPeriod = time.Second

// rtBudget keeps the namespace's cgroup holding what its containers hold.
// Its lock is held from sizing the parent to the container's creation, so
// two starts (or a start and a stop) cannot size it under each other.
type rtBudget struct {
	root string // the cpu controller's cgroup v1 hierarchy; "" = no real-time groups
	ns   string
	// wait is how long settle lets a period's use of a stopped container
	// count before it shrinks the namespace's group; 0 = rtPeriod (a whole
	// period, wherever in it the container stopped).
	wait time.Duration
	mu   sync.Mutex
}

func newRTBudget(ns string) *rtBudget {
	mounts, _ := cgroupfs.Mounts() // none readable: no real-time groups to size
	return &rtBudget{root: cpuV1Root(mounts), ns: ns}
}

// cpuV1Root is where the cgroup v1 hierarchy with the cpu controller is
// mounted, if it has real-time group scheduling; "" otherwise.
func cpuV1Root(mounts []cgroupfs.Mount) string {
	for _, m := range mounts {
		if !m.Has("cpu") {
			continue
		}
		if _, err := os.Stat(filepath.Join(m.Point, "cpu.rt_runtime_us")); err == nil {
			return m.Point
		}
	}
	return ""
}

// reserve sizes the namespace's group for one more container holding d;
// the caller holds b.mu until that container's task exists. It only grows
// the group (settle shrinks it), and tries for up to a second, as a group
// just removed still counts for a moment.
func (b *rtBudget) reserve(d time.Duration) error {
	if b.root == "" {
		return nil
	}
	dir := filepath.Join(b.root, b.ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("real-time time: %w", err)
	}
	var want int64
	var err error
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var held, has int64
		if held, err = childrenRT(dir); err != nil {
			return fmt.Errorf("real-time time: %w", err)
		}
		if has, err = readRT(dir); err != nil {
			return fmt.Errorf("real-time time: %w", err)
		}
		if want = held + d.Microseconds(); has >= want {
			return nil
		}
		if err = writeRT(dir, want); err == nil {
			return nil
		}
	}
	return fmt.Errorf("real-time time: cgroup %s cannot hold %d µs per second for its containers (%w): other groups hold the machine's real-time time, or ask for less per container", dir, want, err)
}

// settle gives the namespace's group back what no container holds any
// more, once the group of the container id, stopped or removed, is gone.
// It returns at once and shrinks the group later, in the background: the
// kernel counts a child's real-time use in its parent's until the period
// ends, so a parent shrunk as soon as the child goes can find itself over
// its new time and throttle every container in it for the rest of the
// period (the new owner's loop sat throttled 23 ms after a commit). It
// waits b.wait, then tries for up to a second: runc removes the group
// just after the task's deletion returns, and the kernel releases a
// removed group asynchronously (the parent cannot shrink below it until
// then). Best effort: the next reserve sizes the group again. A namespace
// that holds none (no container asked for any) costs one read.
func (b *rtBudget) settle(id string) {
	if b == nil || b.root == "" {
		return
	}
	dir := filepath.Join(b.root, b.ns)
	if has, err := readRT(dir); err != nil || has == 0 {
		return
	}
	time.AfterFunc(cmp.Or(b.wait, rtPeriod), func() {
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, id)); !errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if b.shrink(dir) == nil {
				return
			}
		}
	})
}

// shrink sets dir's real-time time to what its children hold.
func (b *rtBudget) shrink(dir string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	held, err := childrenRT(dir)
	if err != nil {
		return err
	}
	return writeRT(dir, held)
}

// childrenRT sums the real-time time of dir's child groups.
func childrenRT(dir string) (int64, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, e := range es {
		if !e.IsDir() {
			continue
		}
		n, err := readRT(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the listing
		}
		if err != nil {
			return 0, err
		}
		sum += max(n, 0)
	}
	return sum, nil
}

// readRT reads a group's real-time time, µs per period.
func readRT(dir string) (int64, error) {
	p, err := os.ReadFile(filepath.Join(dir, "cpu.rt_runtime_us"))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(p)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", dir, err)
	}
	return n, nil
}

func writeRT(dir string, us int64) error {
	return os.WriteFile(filepath.Join(dir, "cpu.rt_runtime_us"), []byte(strconv.FormatInt(us, 10)), 0o644)
}

// withRealTime grants the container SCHED_FIFO with d of real-time time per
// rtPeriod (see above); budgeted says whether the kernel groups it.
func withRealTime(d time.Duration, budgeted bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		caps := []string{"CAP_SYS_NICE"}
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps,
		}
		if !budgeted {
			return nil
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.CPU == nil {
			s.Linux.Resources.CPU = &specs.LinuxCPU{}
		}
		runtime, period := d.Microseconds(), uint64(rtPeriod.Microseconds())
		s.Linux.Resources.CPU.RealtimeRuntime, s.Linux.Resources.CPU.RealtimePeriod = &runtime, &period
		return nil
	}
}
