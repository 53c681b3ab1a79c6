package rig

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/onboard"
	"github.com/skyswap/skyswap/hw/bus"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/images/labels"
)

// FleetConfig configures StartFleet. The zero value of each optional field
// means the default noted beside it.
type FleetConfig struct {
	Sim    string // drone-sim binary (required)
	Flight string // the first owner's flight binary (required)
	// SimEnv and FlightEnv are extra SIM_* and FLIGHT_* settings; every
	// instance gets FlightEnv.
	SimEnv, FlightEnv []string
	Owner             string       // the first owner's instance name; "" = v1-0
	Logs              io.Writer    // both processes' logs; nil = discarded
	Log               *slog.Logger // the coordinator's log; nil = discarded
	Grace             time.Duration
}

// Fleet is one virtual drone in the air under a flight app, with the
// hand-over machinery around it: the embedded on-board NATS server,
// drone-sim, a process Runtime and a Coordinator.
type Fleet struct {
	Sim   *Sim
	RT    *Runtime
	NATS  *onboard.Server
	Coord *coordinator.Coordinator
	// Hover is when the first owner reached the reference altitude.
	Hover int64
	// BeforeStop, if set, runs just before the coordinator stops an
	// instance (tests use it to order faults).
	BeforeStop func(instance string)

	mu    sync.Mutex
	owner string
	nc    *nats.Conn
	lease bus.LeaseReader
	dir   string
}

// StartFleet starts everything and waits until the first owner hovers.
func StartFleet(ctx context.Context, cfg FleetConfig) (f *Fleet, err error) {
	f = &Fleet{owner: cfg.Owner}
	if f.owner == "" {
		f.owner = "v1-0"
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.dir, err = os.MkdirTemp("", "skyswap-fleet-"); err != nil {
		return f, err
	}
	if f.NATS, err = onboard.Start(onboard.Config{StoreDir: filepath.Join(f.dir, "nats")}); err != nil {
		return f, err
	}
	if f.Sim, err = StartSim(ctx, cfg.Sim, f.dir, cfg.SimEnv, cfg.Logs); err != nil {
		return f, err
	}
	f.RT = &Runtime{Logs: cfg.Logs, Grace: cfg.Grace, Env: append([]string{
		"FLIGHT_BUS=sim:" + f.Sim.Socket, "FLIGHT_NATS=" + f.NATS.URL(),
	}, cfg.FlightEnv...)}
	if f.RT.Grace == 0 {
		f.RT.Grace = 10 * time.Second
	}
	if _, err = f.RT.StartOwner(f.owner, cfg.Flight); err != nil {
		return f, err
	}
	if f.Hover, err = f.Sim.WaitHover(ctx, 30*time.Second); err != nil {
		return f, err
	}
	if f.nc, err = nats.Connect(f.NATS.URL(), nats.Name("coordinator")); err != nil {
		return f, fmt.Errorf("rig: nats: %w", err)
	}
	if f.lease, err = bus.OpenLease(ctx, "sim:"+f.Sim.Socket, "coordinator"); err != nil {
		return f, err
	}
	f.Coord, err = coordinator.New(f.nc, hooked{f}, coordinator.Config{App: labels.DefaultApp, Lease: f.lease, Log: cfg.Log})
	return f, err
}

// hooked is the fleet's Runtime as the coordinator sees it.
type hooked struct{ f *Fleet }

func (h hooked) Start(ctx context.Context, s coordinator.Spec) error { return h.f.RT.Start(ctx, s) }

func (h hooked) Stop(ctx context.Context, instance string) error {
	if h.f.BeforeStop != nil {
		h.f.BeforeStop(instance)
	}
	return h.f.RT.Stop(ctx, instance)
}

// Owner is the instance that owns the hardware after the last committed
// update.
func (f *Fleet) Owner() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.owner
}

// Update runs plan, the candidate running bin with extra env. An empty
// plan.Owner means the current owner.
func (f *Fleet) Update(ctx context.Context, plan coordinator.Plan, bin string, env ...string) (coordinator.Result, error) {
	f.RT.AddEnv(plan.Candidate, env...)
	plan.Image = bin
	if plan.Owner == "" {
		plan.Owner = f.Owner()
	}
	res, err := f.Coord.Run(ctx, plan)
	if res.Outcome == report.OutcomeCommitted {
		f.mu.Lock()
		f.owner = plan.Candidate
		f.mu.Unlock()
	}
	return res, err
}

// Report is the referee over [from, to].
func (f *Fleet) Report(ctx context.Context, from, to int64) (referee.Report, error) {
	return f.Sim.Report(ctx, from, to)
}

// Land stops the current owner (it lands on SIGTERM unless told to exit).
func (f *Fleet) Land() error { return f.RT.Stop(context.Background(), f.Owner()) }

// Close stops everything.
func (f *Fleet) Close() {
	if f.Coord != nil {
		f.Coord.Close()
	}
	if f.nc != nil {
		f.nc.Close()
	}
	if f.lease != nil {
		f.lease.Close()
	}
	if f.RT != nil {
		f.RT.KillAll()
	}
	if f.Sim != nil {
		f.Sim.Stop()
	}
	if f.NATS != nil {
		f.NATS.Shutdown()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}
