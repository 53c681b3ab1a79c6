// Package containerstest holds what tests that need containerd share.
package containerstest

import (
	"fmt"
	"os"
	"testing"
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
