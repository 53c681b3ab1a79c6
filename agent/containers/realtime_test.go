package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/cgroupfs"
)

func TestCPUV1Root(t *testing.T) {
	withRT, withoutRT := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(withRT, "cpu.rt_runtime_us"), []byte("950000\n"), 0o644)
	line := func(mnt, fstype, super string) string {
		return "35 24 0:30 / " + mnt + " rw,nosuid,nodev,noexec,relatime shared:13 - " + fstype + " cgroup " + super + "\n"
	}
	for _, tc := range []struct {
		name, mountinfo, want string
	}{
		{"v1 cpu with rt groups", line("/sys/fs/cgroup/memory", "cgroup", "rw,memory") + line(withRT, "cgroup", "rw,cpu,cpuacct"), withRT},
		{"v1 cpu without rt groups", line(withoutRT, "cgroup", "rw,cpu,cpuacct"), ""},
		{"cpuacct alone is not cpu", line(withRT, "cgroup", "rw,cpuacct"), ""},
		{"v2", line(withRT, "cgroup2", "rw,nsdelegate"), ""},
		{"garbage", "not a mountinfo line\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cpuV1Root(cgroupfs.Parse(tc.mountinfo)); got != tc.want {
				t.Errorf("cpuV1Root = %q, want %q", got, tc.want)
			}
		})
	}
	if got := cpuV1Root(nil); got != "" {
		t.Errorf("cpuV1Root(no mounts) = %q", got)
	}
}

// TestRTBudget: the namespace's group holds what its containers hold, plus
// the one about to start; a stop gives the rest back.
func TestRTBudget(t *testing.T) {
	root := t.TempDir()
	b := &rtBudget{root: root, ns: "skyswap", wait: time.Second} // long beside the test's few reads, even on a loaded machine
	ns := filepath.Join(root, "skyswap")
	child := func(id, us string) {
		os.MkdirAll(filepath.Join(ns, id), 0o755)
		os.WriteFile(filepath.Join(ns, id, "cpu.rt_runtime_us"), []byte(us+"\n"), 0o644)
	}
	parent := func() string {
		t.Helper()
		p, err := os.ReadFile(filepath.Join(ns, "cpu.rt_runtime_us"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(p))
	}
	os.MkdirAll(ns, 0o755) // as the kernel makes a group: holding none
	os.WriteFile(filepath.Join(ns, "cpu.rt_runtime_us"), []byte("0\n"), 0o644)
	if err := b.reserve(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := parent(); got != "200000" {
		t.Fatalf("first reserve: parent holds %s µs, want 200000", got)
	}
	child("owner", "200000")
	child("sidecar", "0") // a container without real-time time
	if err := b.reserve(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := parent(); got != "400000" {
		t.Errorf("second reserve: parent holds %s µs, want 400000", got)
	}
	child("candidate", "200000")
	os.RemoveAll(filepath.Join(ns, "owner")) // retired: runc removed its group
	b.settle("owner")
	if got := parent(); got != "400000" { // the owner's use still counts this period
		t.Errorf("right after a stop: parent holds %s µs, want 400000 until the wait is over", got)
	}
	if got := containerstest.AwaitRealTime(t, ns, "200000"); got != "200000" {
		t.Errorf("after a stop: parent holds %s µs, want 200000", got)
	}
	os.WriteFile(filepath.Join(ns, "cpu.rt_runtime_us"), []byte("300000\n"), 0o644)
	if err := b.reserve(100 * time.Millisecond); err != nil { // room enough already: left as it is
		t.Fatal(err)
	}
	if got := parent(); got != "300000" {
		t.Errorf("reserve with room: parent holds %s µs, want 300000", got)
	}
	child("bad", "lots")
	if err := b.reserve(time.Millisecond); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("reserve over an unreadable group: %v, want an error naming it", err)
	}

	none := &rtBudget{ns: "skyswap"} // no real-time groups: nothing to size
	if err := none.reserve(time.Millisecond); err != nil {
		t.Error(err)
	}
	none.settle("owner")
	var unopened *rtBudget
	unopened.settle("owner")
}
