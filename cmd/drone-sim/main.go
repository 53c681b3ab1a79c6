// Command drone-sim runs the virtual drone: the I2C and SPI buses on a unix
// socket (SIM_SOCKET), the referee, camera report and ground truth over
// HTTP on loopback (SIM_HTTP), physics in real time, and a thermal camera
// unless SIM_CAMERA=0. Settings are SIM_* variables (see sim.Settings).
// Logs are JSON on stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim"
)

func main() {
	// Locked real-time threads: the physics and a bus connection per
	// chip user (three per flight instance, two instances in a hand-over).
	// A bus reply that waits for a P stalls the flight loop's tick.
	mono.ReserveProcs(16)
	noCollection()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("drone-sim stopped", "err", err)
		fmt.Fprintln(os.Stderr, "drone-sim:", err)
		os.Exit(1)
	}
}

// heapLimit is the heap at which drone-sim collects after all, unless
// GOMEMLIMIT says otherwise: 16 times the ~65 MB the referee's logs take,
// 38 minutes of a 1000 Hz soak's growth (0.42 MB/s, all of it the HTTP
// handlers' answers to the bench: a flight allocates nothing here), and a
// soak case runs a drone-sim of its own for about 5.
const heapLimit = 1 << 30

// noCollection turns the collector off, up to heapLimit. A collection
// would stop the flight: its mark work runs on drone-sim's threads, all of
// them real-time above the flight loop, and it takes the scan bits of the
// bus threads sitting in read(2), so a bus reply waits for it. (With the
// collector ordinary, a bus thread whose read returned spun in exitsyscall
// until it let go, one on each CPU: a soak saw both flight loops stop for
// 950 ms that way, and the standby took back.)
func noCollection() {
	debug.SetGCPercent(-1)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(heapLimit)
	}
}

func run(log *slog.Logger) error {
	s, err := sim.LoadSettings(os.Getenv)
	if err != nil {
		return fmt.Errorf("bad configuration: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := s.Config()
	cfg.Log = log
	// All of drone-sim's threads run at the simulator's priority, not only
	// the physics and bus threads: a bus thread that Go preempts (sysmon's
	// 10 ms rule), whose read returns with no P free, or that parks on a
	// lock runs again only when another thread runs Go's scheduler for it.
	// An ordinary one waited 5-18 ms so behind a container's `runc init`
	// beside the CPU hog, the flight's reply with it. At one priority no
	// spinner is above its holder (mono.Helpers).
	if cfg.RTPriority > 0 {
		if err := mono.Helpers(cfg.RTPriority); err != nil {
			log.Warn("drone-sim's other threads stay ordinary: a bus reply may wait for one", "err", err)
		}
	}
	d := sim.New(cfg)
	if err := os.MkdirAll(filepath.Dir(s.Socket), 0o755); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	errc := make(chan error, 3)
	go func() { errc <- d.Run(ctx) }()
	go func() { errc <- d.Serve(ctx, s.Socket) }()
	if s.HTTP != "off" {
		ln, err := net.Listen("tcp", s.HTTP)
		if err != nil {
			return fmt.Errorf("SIM_HTTP=%s: %w", s.HTTP, err)
		}
		srv := &http.Server{Handler: d.Handler()}
		context.AfterFunc(ctx, func() { srv.Close() })
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	log.Info("drone-sim running", "socket", s.Socket, "http", s.HTTP,
		"gust_n", s.GustN, "noise", s.Noise, "seed", s.Seed, "camera", !s.NoCamera)
	select {
	case <-ctx.Done():
		log.Info("drone-sim stopping")
		return nil
	case err := <-errc:
		return err
	}
}
