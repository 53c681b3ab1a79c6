// Command flight is the flight app: a 400 Hz attitude and altitude
// controller that flies the drone through the hardware layer. It is
// configured from FLIGHT_* environment variables (see package app) and logs
// JSON to stdout. SIGTERM or SIGINT lands the drone, then exits.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/flight/app"
)

func main() {
	// The control loop is one locked thread; the rest (NATS, the camera)
	// must not leave it waiting for a P.
	mono.ReserveProcs(4)
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println("flight", app.Version)
		return
	}
	cfg, err := app.Load(os.Getenv)
	if err != nil {
		log.Error("bad configuration", "err", err)
		fmt.Fprintln(os.Stderr, "flight: bad configuration:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("flight app stopped", "err", err)
		os.Exit(1)
	}
}
