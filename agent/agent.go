// Package agent is the drone agent's update logic: a signed command in,
// verified and deduplicated; the image's labels checked (app, platform,
// the owner's state schema) before any layer is pulled; the image pulled
// for this drone's platform; the release started cold (first deploy) or
// handed over to by the coordinator; the outcome recorded in the journal
// and reported as events and retained state. The transports are small interfaces this package
// owns; cmd/drone-agent wires MQTT (agent/broker), containerd
// (agent/containers, agent/instances) and NATS (handoff) into them.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
)

// Publisher reports to the ground (implemented by *broker.Client).
type Publisher interface {
	PublishState(ctx context.Context, payload []byte) error
	PublishEvent(ctx context.Context, payload []byte) error
}

// Images looks up, pulls and removes images (implemented by
// *containers.Runtime). Lookup reads an image's labels for this host
// without its layers; on error its Fetched still counts what was read.
type Images interface {
	Lookup(ctx context.Context, ref string) (containers.Image, error)
	Pull(ctx context.Context, ref string, progress func(containers.Progress)) (containers.Image, error)
	RemoveImage(ctx context.Context, ref string) error
}

// Schemas tells which state schema an app's flying owner publishes
// (implemented over the on-board NATS by RunDaemon).
type Schemas interface {
	// OwnerSchema returns the schema of the owner's newest state frame, or
	// "" if no frame is at hand.
	OwnerSchema(ctx context.Context, app string) (string, error)
}

// Instances starts and stops app instances (implemented by
// *instances.Runtime): the coordinator's Runtime, which the agent also uses
// for a first, cold start.
type Instances = coordinator.Runtime

// frameSchemas reads an owner's schema from the newest frame the on-board
// NATS keeps of the app (only an owner publishes frames).
type frameSchemas struct{ ob Onboard }

func (f frameSchemas) OwnerSchema(ctx context.Context, app string) (string, error) {
	data, err := f.ob.LastFrame(ctx, app)
	if err != nil || data == nil {
		return "", err
	}
	fr, err := handoff.DecodeFrame(data)
	if err != nil {
		return "", fmt.Errorf("agent: the owner's last frame: %w", err)
	}
	return fr.Schema, nil
}

// Updater runs a hand-over (implemented by *coordinator.Coordinator).
type Updater interface {
	Run(ctx context.Context, plan coordinator.Plan) (coordinator.Result, error)
}

// Config is the agent's behaviour. The zero value of each optional field
// means the default noted beside it.
type Config struct {
	Drone string // required: this drone's id
	// Labels go into every state the agent publishes (report.State); nil
	// = none.
	Labels   map[string]string
	Verifier command.Verifier // its Drone is set from Drone
	// Probation of a hand-over; 0 = coordinator.DefaultProbation.
	Probation time.Duration
	// SyncTimeout for a candidate; 0 = coordinator.DefaultSyncTimeout.
	SyncTimeout time.Duration
	// Schemas lets an update whose image cannot read the owner's state be
	// refused before its layers are pulled. nil = the coordinator alone
	// refuses it, after the pull.
	Schemas Schemas
	Log     *slog.Logger // nil = discard
	Now     func() time.Time
}

// Agent handles commands one at a time.
type Agent struct {
	cfg     Config
	pub     Publisher
	images  Images
	inst    Instances
	updater Updater
	seen    *command.Seen
	j       *journal.Journal
	log     *slog.Logger

	mu      sync.Mutex // one command at a time
	unknown []string   // running instances Recover could not judge (under mu)
}

// New returns an agent. All dependencies are required.
func New(cfg Config, pub Publisher, images Images, inst Instances, updater Updater, seen *command.Seen, j *journal.Journal) (*Agent, error) {
	if cfg.Drone == "" {
		return nil, errors.New("agent: the drone id is not set")
	}
	cfg.Verifier.Drone = cfg.Drone
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Agent{cfg: cfg, pub: pub, images: images, inst: inst, updater: updater, seen: seen, j: j, log: cfg.Log}, nil
}

// Event is one message on fleet/<drone>/events.
type Event = report.Event

// StateReport is the retained fleet/<drone>/state.
type StateReport = report.State

func (a *Agent) emit(ctx context.Context, e Event) {
	e.Drone = a.cfg.Drone
	e.Time = a.cfg.Now().UTC().Format(time.RFC3339Nano)
	a.log.Info("event", "phase", e.Phase, "command", e.Command, "app", e.App, "outcome", e.Outcome, "err", e.Error)
	b, _ := json.Marshal(e)
	if err := a.pub.PublishEvent(ctx, b); err != nil {
		a.log.Warn("publish event", "err", err)
	}
}

// PublishState reports the journal's state, retained.
func (a *Agent) PublishState(ctx context.Context) error {
	st := a.j.State()
	r := StateReport{Drone: a.cfg.Drone, Online: true, Committed: map[string]string{}, Owner: st.Owner, Labels: a.cfg.Labels}
	for app, rel := range st.Committed {
		r.Committed[app] = rel.Image
	}
	if st.Update != nil {
		r.Updating = st.Update.App + " -> " + st.Update.To.Release.Image
	}
	b, _ := json.Marshal(r)
	return a.pub.PublishState(ctx, b)
}

// OfflineState is the drone's last will (broker.Config.WillPayload): the
// offline state with its labels, so that the ground can still pick an
// offline drone by them.
// Without labels it is broker.DefaultOffline's {"drone":"<id>","online":false}.
func OfflineState(drone string, labels map[string]string) []byte {
	b, _ := json.Marshal(struct {
		Drone  string            `json:"drone"`
		Online bool              `json:"online"`
		Labels map[string]string `json:"labels,omitempty"`
	}{drone, false, labels})
	return b
}

// Handle processes one command payload. It never panics on bad input: a
// refused command is reported on events with the reason.
func (a *Agent) Handle(ctx context.Context, payload []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := command.Parse(payload)
	if err != nil {
		a.emit(ctx, Event{Phase: report.PhaseRefused, Error: err.Error()})
		return
	}
	if err := a.cfg.Verifier.Verify(c); err != nil {
		a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseRefused, Error: err.Error()})
		return
	}
	if err := a.seen.Check(c); err != nil {
		a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseRefused, Error: err.Error()})
		return
	}
	if err := a.seen.Mark(c); err != nil {
		// Not recorded: acting on it could run it twice.
		a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseRefused, Error: "cannot record the command id: " + err.Error()})
		return
	}
	switch c.Kind {
	case command.KindStatus:
		if err := a.PublishState(ctx); err != nil {
			a.log.Warn("publish state", "err", err)
		}
	case command.KindUpdate:
		a.update(ctx, c, c.Image)
	case command.KindRollback:
		image := c.Image
		if image == "" {
			prev, ok := a.j.State().Previous[c.App]
			if !ok {
				a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseRefused, Error: "no previous release of " + c.App + " to roll back to"})
				return
			}
			image = prev.Image
		}
		a.update(ctx, c, image)
	}
}

// compatible checks, before a pull, that a candidate accepting the state
// schemas accepts (nil = undeclared) can read what owner publishes: the
// coordinator's own check (Plan.Accepts, coordinator.ErrIncompatible), made
// early. An owner schema that cannot be read now is left to the
// coordinator.
func (a *Agent) compatible(ctx context.Context, app, owner string, accepts []string) error {
	if a.cfg.Schemas == nil || accepts == nil {
		return nil
	}
	schema, err := a.cfg.Schemas.OwnerSchema(ctx, app)
	if err != nil || schema == "" {
		a.log.Warn("owner's state schema unknown before the pull; the coordinator checks it", "app", app, "err", err)
		return nil
	}
	if !slices.Contains(accepts, schema) {
		return fmt.Errorf("%w: candidate accepts state schemas %v, owner %s publishes %q; build the candidate with a schema it can read",
			coordinator.ErrIncompatible, accepts, owner, schema)
	}
	return nil
}
