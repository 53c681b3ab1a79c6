package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// HogSubcommand is the hidden subcommand of skyswap-chaos that busy-loops
// (RunHog): a hog re-executes the program with it.
const HogSubcommand = "hog"

// RunHog is the hog subcommand: it keeps one CPU busy for -for, then
// exits. It allocates nothing while it spins.
func RunHog(args []string) error {
	fs := flag.NewFlagSet(HogSubcommand, flag.ContinueOnError)
	d := fs.Duration("for", 0, "how long to keep one CPU busy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *d <= 0 {
		return errors.New("hog: give -for, such as -for 300ms")
	}
	Spin(context.Background(), *d) // one goroutine, no allocation: one busy CPU
	return nil
}

// Spin keeps the calling goroutine's CPU busy for d or until ctx ends.
func Spin(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		if i%4096 == 0 && (ctx.Err() != nil || !time.Now().Before(deadline)) {
			return
		}
	}
}

// hogs are busy-looping child processes.
type hogs struct{ cmds []*exec.Cmd }

// startHog starts n busy children of argv (with "-for d" added) and moves
// each into the cgroup at dir. Each ends by itself after d, and the kernel
// kills it if this process dies first (Pdeathsig), so a hog never
// outlives its fault by much.
func startHog(argv []string, dir string, n int, d time.Duration) (*hogs, error) {
	procs, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("hog: open the container's cgroup (%w): run skyswap-chaos as root", err)
	}
	defer procs.Close()
	h := &hogs{}
	for range n {
		cmd := exec.Command(argv[0], append(argv[1:], "-for", d.String())...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			h.stop()
			return nil, fmt.Errorf("hog: start %s: %w", argv[0], err)
		}
		h.cmds = append(h.cmds, cmd)
		// One pid per write: cgroup.procs takes one at a time.
		if _, err := procs.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n"); err != nil {
			h.stop()
			return nil, fmt.Errorf("hog: move pid %d into %s: %w", cmd.Process.Pid, dir, err)
		}
	}
	return h, nil
}

func (h *hogs) pids() []int {
	p := make([]int, len(h.cmds))
	for i, c := range h.cmds {
		p[i] = c.Process.Pid
	}
	return p
}

// stop kills the hogs and reaps them; those that ended by themselves are
// reaped too.
func (h *hogs) stop() error {
	var errs []error
	for _, c := range h.cmds {
		if err := c.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("hog: kill pid %d: %w", c.Process.Pid, err))
		}
		c.Wait() // killed or spent: either way it ends; its status says nothing new
	}
	return errors.Join(errs...)
}
