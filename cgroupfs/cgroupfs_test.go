package cgroupfs

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	mountinfo := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
32 31 0:29 /docker/abc /mnt/my\040cgroups rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
not a mount line`
	want := []Mount{
		{Root: "/", Point: "/sys/fs/cgroup/cpu,cpuacct", Options: []string{"rw", "cpu", "cpuacct"}},
		{Root: "/docker/abc", Point: "/mnt/my cgroups", Options: []string{"rw", "memory"}},
		{Root: "/", Point: "/sys/fs/cgroup/unified", V2: true, Options: []string{"rw"}},
	}
	got := Parse(mountinfo)
	if !slices.EqualFunc(got, want, func(a, b Mount) bool {
		return a.Root == b.Root && a.Point == b.Point && a.V2 == b.V2 && slices.Equal(a.Options, b.Options)
	}) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		m          Mount
		controller string
		want       bool
	}{
		{want[0], "cpu", true},
		{want[0], "cpuacct", true},
		{want[0], "memory", false},
		{Mount{V2: true, Options: []string{"cpu"}}, "cpu", false}, // v2 lists no controllers in its options
	} {
		if got := tc.m.Has(tc.controller); got != tc.want {
			t.Errorf("%v.Has(%q) = %v, want %v", tc.m.Options, tc.controller, got, tc.want)
		}
	}
}
