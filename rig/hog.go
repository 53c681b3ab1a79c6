package rig

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// HogCgroup is the cgroup Hog's processes run in, under the cpu
// controller (cgroup v1) or the unified hierarchy (v2).
const HogCgroup = "skyswap-hog"

// Hog starts n busy-looping processes, what another workload does to the
// flight's scheduling, and returns a func that stops them. They share one
// cgroup of their own, as every service and login session does on a
// drone under systemd (with cgroup v2 no process stays in the root): a
// task in the root of a cgroup v1 hierarchy competes with each container's
// whole group as an equal, and a lightly loaded group's share on a CPU
// shrinks to nearly nothing, so it would starve the flight for seconds in
// a way no drone sees. Without root (no cgroup to make) they run where the
// caller does.
func Hog(n int) (stop func(), err error) {
	var cmds []*exec.Cmd
	dir := hogCgroup()
	stop = func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		if dir != "" {
			os.Remove(dir)
		}
	}
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("rig: hog: %w", err)
		}
		cmds = append(cmds, c)
		if dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0o644); err != nil {
			stop()
			return nil, fmt.Errorf("rig: hog: join %s: %w", dir, err)
		}
	}
	return stop, nil
}

// hogCgroup makes HogCgroup and returns its directory, or "" when it
// cannot (not root, no cgroup file system).
func hogCgroup() string {
	root := "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); errors.Is(err, os.ErrNotExist) {
		root = filepath.Join(root, "cpu") // cgroup v1
	}
	dir := filepath.Join(root, HogCgroup)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return ""
	}
	return dir
}
