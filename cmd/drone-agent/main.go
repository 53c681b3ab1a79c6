// Command drone-agent is the daemon on the drone: it takes signed commands
// from the fleet's MQTT broker, pulls releases through containerd and hands
// the running app over to them (package agent). Configuration is AGENT_*
// variables (see agent.DaemonConfig); logs are JSON on stdout. SIGTERM stops
// the agent; the app instances keep flying.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/skyswap/skyswap/agent"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println("drone-agent", Version)
		return
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("version", Version)
	cfg, err := agent.LoadDaemonConfig(os.Getenv)
	if err != nil {
		log.Error("bad configuration", "err", err)
		fmt.Fprintln(os.Stderr, "drone-agent: bad configuration:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := agent.RunDaemon(ctx, cfg, log); err != nil {
		log.Error("drone-agent stopped", "err", err)
		fmt.Fprintln(os.Stderr, "drone-agent:", err)
		os.Exit(1)
	}
}
