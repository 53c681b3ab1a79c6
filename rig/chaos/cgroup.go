package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/skyswap/skyswap/cgroupfs"
)

// CPUCgroup returns the directory of the CPU cgroup that process pid is
// in, whose cgroup.procs takes a process into it: on cgroup v1 the one in
// the hierarchy that holds the cpu controller (/sys/fs/cgroup/cpu/...), on
// cgroup v2 the process's only cgroup. It reads /proc/<pid>/cgroup and
// this process's mount table.
func CPUCgroup(pid uint32) (string, error) {
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	mounts, err := cgroupfs.Mounts()
	if err != nil {
		return "", err
	}
	dir, err := cpuCgroupDir(string(cg), mounts)
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return dir, nil
}

// cpuCgroupDir finds the CPU cgroup directory of the process whose
// /proc/<pid>/cgroup is cgroup, given this machine's cgroup mounts. A v1
// cpu controller wins over a v2 hierarchy (a hybrid machine mounts both).
func cpuCgroupDir(cgroup string, mounts []cgroupfs.Mount) (string, error) {
	var v2path string
	for _, line := range strings.Split(strings.TrimSpace(cgroup), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			v2path = f[2]
			continue
		}
		if !slices.Contains(strings.Split(f[1], ","), "cpu") {
			continue
		}
		for _, m := range mounts {
			if m.Has("cpu") {
				return under(m, f[2])
			}
		}
		return "", errors.New("the cpu controller (cgroup v1) is not mounted here: mount it, or run where the container's cgroups are")
	}
	if v2path != "" {
		for _, m := range mounts {
			if m.V2 {
				return under(m, v2path)
			}
		}
	}
	return "", errors.New("no cpu cgroup: neither a cgroup v1 cpu controller nor a cgroup v2 hierarchy is mounted here")
}

// under is the directory of cgroup path in mount m.
func under(m cgroupfs.Mount, path string) (string, error) {
	rel := path
	if m.Root != "/" {
		var ok bool
		if rel, ok = strings.CutPrefix(path, m.Root); !ok {
			return "", fmt.Errorf("cgroup %s is outside the mount of %s at %s", path, m.Root, m.Point)
		}
	}
	return filepath.Join(m.Point, rel), nil
}
