package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cgroup mounts: %w", err)
	}
	dir, err := cpuCgroupDir(string(cg), string(mi))
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return dir, nil
}

// cgroupMount is a cgroup file system mounted on this machine.
type cgroupMount struct {
	root, point string   // the cgroup mounted, and where
	v2          bool     // cgroup2
	controllers []string // v1: its super options, among them the controllers
}

// cpuCgroupDir finds the CPU cgroup directory of the process whose
// /proc/<pid>/cgroup is cgroup, given the mount table mountinfo. A v1 cpu
// controller wins over a v2 hierarchy (a hybrid machine mounts both).
func cpuCgroupDir(cgroup, mountinfo string) (string, error) {
	mounts := parseCgroupMounts(mountinfo)
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
			if !m.v2 && slices.Contains(m.controllers, "cpu") {
				return under(m, f[2])
			}
		}
		return "", errors.New("the cpu controller (cgroup v1) is not mounted here: mount it, or run where the container's cgroups are")
	}
	if v2path != "" {
		for _, m := range mounts {
			if m.v2 {
				return under(m, v2path)
			}
		}
	}
	return "", errors.New("no cpu cgroup: neither a cgroup v1 cpu controller nor a cgroup v2 hierarchy is mounted here")
}

// under is the directory of cgroup path in mount m.
func under(m cgroupMount, path string) (string, error) {
	rel := path
	if m.root != "/" {
		var ok bool
		if rel, ok = strings.CutPrefix(path, m.root); !ok {
			return "", fmt.Errorf("cgroup %s is outside the mount of %s at %s", path, m.root, m.point)
		}
	}
	return filepath.Join(m.point, rel), nil
}

// parseCgroupMounts reads the cgroup mounts of a /proc/<pid>/mountinfo:
// "id parent major:minor root point options [optional...] - type source super".
func parseCgroupMounts(mountinfo string) []cgroupMount {
	var out []cgroupMount
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 || (b[0] != "cgroup" && b[0] != "cgroup2") {
			continue
		}
		out = append(out, cgroupMount{root: a[3], point: unescape(a[4]), v2: b[0] == "cgroup2",
			controllers: strings.Split(b[2], ",")})
	}
	return out
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and
// backslash.
func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
