package handofftest

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
)

// Instance is an in-process stand-in for one app process: its own NATS
// connection, a Participant and a Loop.
type Instance struct {
	Name string
	NC   *nats.Conn
	P    *handoff.Participant
	Loop *Loop

	once sync.Once
	exit Exit
}

// StartInstance connects to url, joins the hand-over with cfg (cfg.Instance
// names it; model nil means Model{}; a nil cfg.Lease is ledger) and starts
// its control loop on a grid of cfg.Period, writing to ledger.
func StartInstance(ctx context.Context, url string, model handoff.Model, cfg handoff.ParticipantConfig, ledger *Ledger) (*Instance, error) {
	if model == nil {
		model = Model{}
	}
	if cfg.Lease == nil {
		cfg.Lease = ledger
	}
	nc, err := Dial(url, cfg.Instance)
	if err != nil {
		return nil, err
	}
	p, err := handoff.NewParticipant(ctx, nc, model, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Instance{Name: cfg.Instance, NC: nc, P: p, Loop: StartLoop(p, cfg.Instance, cfg.Period, ledger)}, nil
}

// StopGrace is how long Stop lets a loop reach its tick boundary.
const StopGrace = 2 * time.Second

// Stop ends the instance as a runtime stops a process: the loop ends at its
// next tick boundary (a pending Retire is observed first), then the
// participant leaves and the connection closes. It returns how the loop
// ended; later calls return the same.
func (i *Instance) Stop() Exit {
	i.once.Do(func() {
		i.exit = i.Loop.Terminate(StopGrace)
		i.P.Close()
		i.NC.Close()
	})
	return i.exit
}

// Kill is a crash: the loop ends at once and the connection drops without
// the participant leaving. Stop afterwards releases the participant.
func (i *Instance) Kill() {
	i.Loop.Kill()
	i.NC.Close()
}

// Stop implements Stopper.
var _ Stopper = (*Instance)(nil)
