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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/images/labels"
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
// *instances.Runtime).
type Instances interface {
	coordinator.Runtime
	Prepare(instance, image string)
	StartOwner(ctx context.Context, instance string) error
}

// frameSchemas reads an owner's schema from the newest frame the on-board
// NATS keeps of the app (only an owner publishes frames).
type frameSchemas struct{ nc *nats.Conn }

func (f frameSchemas) OwnerSchema(ctx context.Context, app string) (string, error) {
	data, err := handoff.LastFrame(ctx, f.nc, app)
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
	Drone    string           // required: this drone's id
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

	mu      sync.Mutex                      // one command at a time
	unknown []string                        // running instances Recover could not judge (under mu)
	current atomic.Pointer[command.Command] // the command being handled, for coordinator events
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

// HandleEvent forwards a coordinator phase change (set it as the
// coordinator's OnEvent).
func (a *Agent) HandleEvent(e handoff.Event) {
	cur := a.current.Load()
	ev := Event{App: e.App, Phase: e.Phase, From: e.From, To: e.To, Epoch: e.Epoch, Tick: e.Tick, Error: e.Error}
	if cur != nil {
		ev.Command = cur.ID
	}
	if err := a.j.Phase(e.Phase); err != nil {
		a.log.Debug("journal phase", "err", err)
	}
	a.emit(context.Background(), ev)
}

// PublishState reports the journal's state, retained.
func (a *Agent) PublishState(ctx context.Context) error {
	st := a.j.State()
	r := StateReport{Drone: a.cfg.Drone, Online: true, Committed: map[string]string{}, Owner: st.Owner}
	for app, rel := range st.Committed {
		r.Committed[app] = rel.Image
	}
	if st.Update != nil {
		r.Updating = st.Update.App + " -> " + st.Update.To.Release.Image
	}
	b, _ := json.Marshal(r)
	return a.pub.PublishState(ctx, b)
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
	a.current.Store(&c)
	defer a.current.Store(nil)
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

// MaxRetries is how many more times the agent tries a hand-over that
// aborted safely for timing (Result.Retryable: the owner flew on untouched,
// as a busy moment can cause) before it reports the abort.
const MaxRetries = 2

// handover runs plan with the candidate on image, retrying safe timing
// aborts; each retry is reported (PhaseRetry).
func (a *Agent) handover(ctx context.Context, c command.Command, image string, plan coordinator.Plan) (coordinator.Result, error) {
	for try := 0; ; try++ {
		a.inst.Prepare(plan.Candidate, image)
		res, err := a.updater.Run(ctx, plan)
		if err == nil || !res.Retryable || res.Owner != plan.Owner || try == MaxRetries || ctx.Err() != nil {
			return res, err
		}
		a.log.Warn("hand-over aborted safely; trying again", "reason", res.Reason, "try", try+1)
		a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseRetry, To: plan.Candidate, Error: res.Reason})
	}
}

// update makes image the app's release. What the image is (app, platform,
// state schemas) is checked from its labels before any layer is pulled.
func (a *Agent) update(ctx context.Context, c command.Command, image string) {
	refuse := func(msg string, fetched int64) {
		a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseRefused, Outcome: report.OutcomeRefused, To: image, Bytes: fetched, Error: msg})
	}
	if a.unknown != nil {
		refuse(fmt.Sprintf("the agent cannot tell which of %s drives the motors: stop all but the flying one "+
			"(ctr -n <AGENT_NAMESPACE> task kill <id>) and restart drone-agent", strings.Join(a.unknown, ", ")), 0)
		return
	}
	img, err := a.images.Lookup(ctx, image)
	if err != nil {
		refuse("image: "+err.Error(), img.Fetched)
		return
	}
	if app := img.Labels[labels.App]; app != c.App {
		refuse(fmt.Sprintf("the image is app %q, the command says %q", app, c.App), img.Fetched)
		return
	}
	var accepts []string
	if s := img.Labels[labels.StateSchemas]; s != "" {
		accepts = strings.Split(s, ",")
	}
	how := strategy.Strategy(c.Strategy)
	if how == "" {
		how = strategy.Strategy(img.Labels[labels.Strategy])
	}
	rel := journal.NewRelease(c.App, image, img.Labels[labels.Version], nil, a.cfg.Now())
	st := a.j.State()
	owner := st.Owner[c.App]
	if cur, ok := st.Committed[c.App]; ok && cur.ID == rel.ID && owner != "" {
		refuse("release "+rel.ID+" is already committed and flying", img.Fetched)
		return
	}
	if owner != "" {
		if err := a.compatible(ctx, c.App, owner, accepts); err != nil {
			refuse(err.Error(), img.Fetched)
			return
		}
	}
	a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhasePulling, To: image})
	// Progress goes to the ground at most twice a second: a slow radio
	// link shows the pull moving without being flooded.
	// The fetchers call progress; the report goes out from its own
	// goroutine, so a slow link never holds up the pull.
	lastProgress := a.cfg.Now()
	fetched := make(chan int64, 1)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for n := range fetched {
			ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
			a.emit(ectx, Event{Command: c.ID, App: c.App, Phase: report.PhasePulling, To: image, Bytes: n})
			cancel()
		}
	}()
	progress := func(p containers.Progress) {
		if now := a.cfg.Now(); now.Sub(lastProgress) >= 500*time.Millisecond {
			lastProgress = now
			// The newest count replaces one not yet sent.
			select {
			case <-fetched:
			default:
			}
			fetched <- p.Fetched
		}
	}
	pulled, err := a.images.Pull(ctx, image, progress)
	close(fetched)
	<-reported
	if err != nil {
		refuse("pull: "+err.Error(), img.Fetched+pulled.Fetched)
		return
	}
	a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhasePulled, To: image, Bytes: img.Fetched + pulled.Fetched})
	to := journal.Instance{ID: rel.ID, Release: rel}
	if owner == "" {
		// First deploy: start it cold, on the ground.
		a.inst.Prepare(to.ID, image)
		if err := a.inst.StartOwner(ctx, to.ID); err != nil {
			a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseFailed, Error: err.Error()})
			return
		}
		if err := a.j.Deploy(to); err != nil {
			a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseFailed, Error: err.Error()})
			return
		}
		a.emit(ctx, Event{Command: c.ID, App: c.App, Phase: report.PhaseDeployed, Outcome: report.OutcomeCommitted, To: to.ID})
		a.PublishState(ctx)
		return
	}
	from := journal.Instance{ID: owner, Release: st.Committed[c.App]}
	if err := a.j.Begin(journal.Update{Command: c.ID, App: c.App, Phase: report.PhasePrepare, From: from, To: to}); err != nil {
		refuse(err.Error(), 0)
		return
	}
	a.PublishState(ctx)
	res, err := a.handover(ctx, c, image, coordinator.Plan{Strategy: how, Owner: owner, Candidate: to.ID, Accepts: accepts,
		Probation: a.cfg.Probation, SyncTimeout: a.cfg.SyncTimeout})
	if res.Outcome == report.OutcomeCommitted {
		dropped, err := a.j.Commit()
		if err != nil {
			a.log.Error("journal commit", "err", err)
		}
		if dropped != nil {
			// Keep the previous release for rollback; older ones go.
			if err := a.images.RemoveImage(ctx, dropped.Image); err != nil {
				a.log.Warn("remove old image", "image", dropped.Image, "err", err)
			}
		}
	} else {
		if err := a.j.End(); err != nil {
			a.log.Error("journal end", "err", err)
		}
		// The candidate is gone (the old owner flies on after an abort,
		// a revert or a refusal); so goes its image, unless a release the
		// drone keeps (the committed one, the previous for rollback) is
		// it. An outcome without an owner is left for Recover to judge.
		st := a.j.State()
		settled := res.Owner == owner && (res.Outcome == report.OutcomeAborted ||
			res.Outcome == report.OutcomeReverted || res.Outcome == report.OutcomeRefused)
		if settled && image != st.Committed[c.App].Image && image != st.Previous[c.App].Image {
			if err := a.images.RemoveImage(ctx, image); err != nil {
				a.log.Warn("remove the failed candidate's image", "image", image, "err", err)
			}
		}
	}
	ev := Event{Command: c.ID, App: c.App, Phase: report.PhaseResult, Outcome: res.Outcome, From: owner, To: to.ID, Epoch: res.Epoch, Tick: res.CutoverTick}
	if err != nil {
		ev.Error = err.Error()
	}
	a.emit(ctx, ev)
	a.PublishState(ctx)
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
