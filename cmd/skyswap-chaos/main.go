// Command skyswap-chaos is a test tool: it injects faults (SIGSTOP,
// SIGKILL, a CPU hog, NATS latency, I2C error bursts) into app containers
// chosen by their containerd labels, on a schedule, and prints one JSON
// line per fault on stdout. `skyswap-chaos -h` lists the flags; package
// rig/chaos has the logic. Logs go to stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/skyswap/skyswap/rig/chaos"
)

func main() {
	// A hog re-executes this program to keep one CPU busy in a
	// container's cgroup.
	if len(os.Args) > 1 && os.Args[1] == chaos.HogSubcommand {
		if err := chaos.RunHog(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "skyswap-chaos:", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := chaos.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
