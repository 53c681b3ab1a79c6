// Package containerstest holds what tests that need containerd share.
package containerstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SkipOrFail skips t with the message, or fails it when the environment
// variable CI is set: CI installs and starts containerd, so a test that
// needs it must run there rather than skip quietly.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: CI must install and start containerd with scripts/dev-setup.sh containerd)", msg)
	}
	t.Skip(msg)
}

// AwaitRealTime polls the real-time time the cgroup v1 group dir holds
// (cpu.rt_runtime_us, µs per second) until it reads want, for up to 10 s,
// and returns what it read last: the agent gives a stopped container's
// time back to its namespace's group a period after the stop, in the
// background.
func AwaitRealTime(t testing.TB, dir, want string) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, err := os.ReadFile(filepath.Join(dir, "cpu.rt_runtime_us")); err == nil {
			got = strings.TrimSpace(string(p))
		}
		if got == want || time.Now().After(deadline) {
			return got
		}
	}
}
