// Package cgroupfs tells where this machine mounts its cgroup file
// systems, from a mount table (/proc/<pid>/mountinfo): the agent finds the
// cpu controller's hierarchy in it to budget real-time time, and
// skyswap-chaos a container's CPU cgroup to load it.
package cgroupfs

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Mount is a cgroup file system mounted on this machine.
type Mount struct {
	Root, Point string   // the cgroup mounted, and where
	V2          bool     // cgroup2
	Options     []string // its super options; for v1, among them its controllers
}

// Has reports whether m is a cgroup v1 hierarchy with controller (cpu,
// memory...).
func (m Mount) Has(controller string) bool { return !m.V2 && slices.Contains(m.Options, controller) }

// Mounts reads this process's mount table.
func Mounts() ([]Mount, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	return Parse(string(mi)), nil
}

// Parse reads the cgroup mounts of a mount table:
// "id parent major:minor root point options [optional...] - type source super".
func Parse(mountinfo string) []Mount {
	var out []Mount
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
		out = append(out, Mount{Root: a[3], Point: unescape(a[4]), V2: b[0] == "cgroup2",
			Options: strings.Split(b[2], ",")})
	}
	return out
}

// unescape undoes mountinfo's octal escapes of space, tab, newline and
// backslash.
func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
