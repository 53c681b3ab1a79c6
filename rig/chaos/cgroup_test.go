package chaos

import (
	"os"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/cgroupfs"
)

// Mount tables as /proc/self/mountinfo shows them.
const (
	// This dev machine: v1 controllers each on its own, plus an empty v2
	// hierarchy (hybrid).
	hybridMounts = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
	// systemd's v1 layout: cpu and cpuacct share one hierarchy.
	coMountedMounts = `25 18 0:22 / /sys/fs/cgroup rw shared:9 - tmpfs tmpfs ro,mode=755
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory`
	// Raspberry Pi OS bookworm: cgroup v2 only.
	v2Mounts = `24 18 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`
	// A v1 cpu hierarchy mounted from a sub-cgroup (inside a container).
	rootedMounts = `32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu`
	// A path with a space, escaped.
	spacedMounts = `32 31 0:29 / /mnt/my\040cgroups rw,relatime - cgroup cgroup rw,cpu`
)

func TestCPUCgroupDir(t *testing.T) {
	for _, tc := range []struct {
		name, cgroup, mounts, want, err string
	}{
		{"v1 hybrid", "9:name=systemd:/\n4:memory:/skyswap-test/flight-v2\n2:cpuacct:/skyswap-test/flight-v2\n1:cpu:/skyswap-test/flight-v2\n0::/",
			hybridMounts, "/sys/fs/cgroup/cpu/skyswap-test/flight-v2", ""},
		{"v1 cpu,cpuacct", "4:memory:/skyswap/flight-v2\n3:cpu,cpuacct:/skyswap/flight-v2\n1:name=systemd:/system.slice/containerd.service",
			coMountedMounts, "/sys/fs/cgroup/cpu,cpuacct/skyswap/flight-v2", ""},
		{"v2", "0::/system.slice/containerd.service/skyswap/flight-v2\n", v2Mounts,
			"/sys/fs/cgroup/system.slice/containerd.service/skyswap/flight-v2", ""},
		{"v1 mounted from a sub-cgroup", "1:cpu:/docker/abc/skyswap/flight-v2", rootedMounts, "/sys/fs/cgroup/cpu/skyswap/flight-v2", ""},
		{"outside the mounted sub-cgroup", "1:cpu:/elsewhere/flight-v2", rootedMounts, "", "outside the mount"},
		{"escaped mount point", "1:cpu:/skyswap/flight-v2", spacedMounts, "/mnt/my cgroups/skyswap/flight-v2", ""},
		{"cpu controller not mounted", "1:cpu:/skyswap/flight-v2", v2Mounts, "", "cpu controller (cgroup v1) is not mounted"},
		{"no cgroup at all", "4:memory:/x", coMountedMounts, "", "no cpu cgroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuCgroupDir(tc.cgroup, cgroupfs.Parse(tc.mounts))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestCPUCgroupOfThisProcess: on this machine the directory found for
// this process exists and lists it.
func TestCPUCgroupOfThisProcess(t *testing.T) {
	dir, err := CPUCgroup(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	procs, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(string(procs), os.Getpid()) {
		t.Fatalf("%s/cgroup.procs does not list this process (%d)", dir, os.Getpid())
	}
}
