// Package onestream makes a process's stderr the same stream as its
// stdout, from before any other package's init: import it (blank) from
// the app's first package. In a container, containerd's shim copies the
// two streams into one log file with a race that can drop what a process
// writes to stderr as it exits (agent/containers.LogFile); a crash at
// start, a fault's message and a Go panic's trace all go to stderr. One
// stream keeps them, in order with the app's own log lines.
package onestream

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func init() {
	if err := unix.Dup3(int(os.Stdout.Fd()), int(os.Stderr.Fd()), 0); err != nil {
		fmt.Fprintf(os.Stderr, "onestream: stderr stays its own stream: %v\n", err)
	}
}
