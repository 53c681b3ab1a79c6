package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/images/labels"
)

// MaxRetries is how many more times the agent tries a hand-over that
// aborted safely for timing (Result.Retryable: the owner flew on untouched,
// as a busy moment can cause) before it reports the abort.
const MaxRetries = 2

// update makes image the app's release: check, pull, then a cold start
// (nothing flies yet) or a hand-over from the owner.
func (a *Agent) update(ctx context.Context, c command.Command, image string) {
	u := &updateRun{a: a, c: c, image: image}
	if err := u.check(ctx); err != nil {
		u.refuse(ctx, err.Error())
		return
	}
	if err := u.pull(ctx); err != nil {
		u.refuse(ctx, "pull: "+err.Error())
		return
	}
	if u.owner == "" {
		u.deploy(ctx)
		return
	}
	u.handOver(ctx)
}

// updateRun is one update as it goes: what was asked, what the image's
// labels say, and who owns the hardware.
type updateRun struct {
	a       *Agent
	c       command.Command
	image   string
	fetched int64 // bytes read so far (labels, then layers)
	rel     journal.Release
	accepts []string          // the state schemas the image declares; nil = undeclared
	how     strategy.Strategy // "" = the coordinator's default
	owner   string            // the instance flying now; "" = none
}

func (u *updateRun) event(e Event) Event {
	e.Command, e.App = u.c.ID, u.c.App
	return e
}

func (u *updateRun) refuse(ctx context.Context, msg string) {
	u.a.emit(ctx, u.event(Event{Phase: report.PhaseRefused, Outcome: report.OutcomeRefused, To: u.image, Bytes: u.fetched, Error: msg}))
}

// check reads what the image is from its labels, before any layer is
// pulled, and refuses an update that must not go ahead.
func (u *updateRun) check(ctx context.Context) error {
	a, c := u.a, u.c
	if a.unknown != nil {
		return fmt.Errorf("the agent cannot tell which of %s drives the motors: stop all but the flying one "+
			"(ctr -n <AGENT_NAMESPACE> task kill <id>) and restart drone-agent", strings.Join(a.unknown, ", "))
	}
	img, err := a.images.Lookup(ctx, u.image)
	u.fetched = img.Fetched
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if app := img.Labels[labels.App]; app != c.App {
		return fmt.Errorf("the image is app %q, the command says %q", app, c.App)
	}
	if s := img.Labels[labels.StateSchemas]; s != "" {
		u.accepts = strings.Split(s, ",")
	}
	u.how = strategy.Strategy(c.Strategy)
	if u.how == "" {
		u.how = strategy.Strategy(img.Labels[labels.Strategy])
	}
	u.rel = journal.NewRelease(c.App, u.image, img.Labels[labels.Version], nil, a.cfg.Now())
	st := a.j.State()
	u.owner = st.Owner[c.App]
	if cur, ok := st.Committed[c.App]; ok && cur.ID == u.rel.ID && u.owner != "" {
		return errors.New("release " + u.rel.ID + " is already committed and flying")
	}
	if u.owner == "" {
		return nil
	}
	return a.compatible(ctx, c.App, u.owner, u.accepts)
}

// pull fetches the layers the drone lacks, reporting progress at most
// twice a second from its own goroutine, so a slow radio link shows the
// pull moving without being flooded or holding it up.
func (u *updateRun) pull(ctx context.Context) error {
	a := u.a
	a.emit(ctx, u.event(Event{Phase: report.PhasePulling, To: u.image}))
	last := a.cfg.Now()
	fetched := make(chan int64, 1)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for n := range fetched {
			ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
			a.emit(ectx, u.event(Event{Phase: report.PhasePulling, To: u.image, Bytes: n}))
			cancel()
		}
	}()
	progress := func(p containers.Progress) {
		if now := a.cfg.Now(); now.Sub(last) >= 500*time.Millisecond {
			last = now
			select { // the newest count replaces one not yet sent
			case <-fetched:
			default:
			}
			fetched <- p.Fetched
		}
	}
	pulled, err := a.images.Pull(ctx, u.image, progress)
	close(fetched)
	<-reported
	u.fetched += pulled.Fetched
	if err != nil {
		return err
	}
	a.emit(ctx, u.event(Event{Phase: report.PhasePulled, To: u.image, Bytes: u.fetched}))
	return nil
}

// deploy starts the first release cold, on the ground.
func (u *updateRun) deploy(ctx context.Context) {
	a := u.a
	to := journal.Instance{ID: u.rel.ID, Release: u.rel}
	err := a.inst.Start(ctx, coordinator.Spec{Instance: to.ID, Image: u.image, Mode: coordinator.ModeCold, Epoch: 1})
	if err == nil {
		err = a.j.Deploy(to)
	}
	if err != nil {
		a.emit(ctx, u.event(Event{Phase: report.PhaseFailed, Error: err.Error()}))
		return
	}
	a.emit(ctx, u.event(Event{Phase: report.PhaseDeployed, Outcome: report.OutcomeCommitted, To: to.ID}))
	a.PublishState(ctx)
}

// handOver replaces the owner through the coordinator, journalled, and
// reports the result.
func (u *updateRun) handOver(ctx context.Context) {
	a, c := u.a, u.c
	to := journal.Instance{ID: u.rel.ID, Release: u.rel}
	from := journal.Instance{ID: u.owner, Release: a.j.State().Committed[c.App]}
	if err := a.j.Begin(journal.Update{Command: c.ID, App: c.App, Phase: report.PhasePrepare, From: from, To: to}); err != nil {
		u.fetched = 0 // nothing more was read for this refusal
		u.refuse(ctx, err.Error())
		return
	}
	a.PublishState(ctx)
	res, err := u.retrying(ctx, coordinator.Plan{Strategy: u.how, Owner: u.owner, Candidate: to.ID, Image: u.image,
		Accepts: u.accepts, Probation: a.cfg.Probation, SyncTimeout: a.cfg.SyncTimeout, OnEvent: u.forward})
	u.settle(ctx, res)
	ev := u.event(Event{Phase: report.PhaseResult, Outcome: res.Outcome, From: u.owner, To: to.ID, Epoch: res.Epoch, Tick: res.CutoverTick})
	if err != nil {
		ev.Error = err.Error()
	}
	a.emit(ctx, ev)
	a.PublishState(ctx)
}

// retrying runs plan, trying again after a safe abort that timing caused;
// each retry is reported (PhaseRetry).
func (u *updateRun) retrying(ctx context.Context, plan coordinator.Plan) (coordinator.Result, error) {
	a := u.a
	for try := 0; ; try++ {
		res, err := a.updater.Run(ctx, plan)
		if err == nil || !res.Retryable || res.Owner != plan.Owner || try == MaxRetries || ctx.Err() != nil {
			return res, err
		}
		a.log.Warn("hand-over aborted safely; trying again", "reason", res.Reason, "try", try+1)
		a.emit(ctx, u.event(Event{Phase: report.PhaseRetry, To: plan.Candidate, Error: res.Reason}))
	}
}

// settle records the outcome in the journal and removes the image that is
// no longer needed: after a commit the release before the previous one;
// after an abort, a revert or a refusal the candidate's, unless the drone
// keeps that release anyway. A revert that left the candidate flying (the
// standby would not take the hardware back) records it as the owner, as
// Recover would: the journal says what flies. An outcome without an owner
// is left for Recover to judge.
func (u *updateRun) settle(ctx context.Context, res coordinator.Result) {
	a := u.a
	if res.Outcome == report.OutcomeCommitted || res.Owner == u.rel.ID {
		if res.Outcome != report.OutcomeCommitted {
			a.log.Warn("the candidate flies after an update that did not commit; it is recorded as the owner", "outcome", res.Outcome, "instance", res.Owner)
		}
		dropped, err := a.j.Commit()
		if err != nil {
			a.log.Error("journal commit", "err", err)
		}
		if dropped != nil {
			a.removeImage(ctx, dropped.Image, "the release before the previous")
		}
		return
	}
	if err := a.j.End(); err != nil {
		a.log.Error("journal end", "err", err)
	}
	st := a.j.State()
	settled := res.Owner == u.owner && (res.Outcome == report.OutcomeAborted ||
		res.Outcome == report.OutcomeReverted || res.Outcome == report.OutcomeRefused)
	if settled && u.image != st.Committed[u.c.App].Image && u.image != st.Previous[u.c.App].Image {
		a.removeImage(ctx, u.image, "the failed candidate's")
	}
}

// forward reports a coordinator phase change as this update's event and
// records the phase in the journal.
func (u *updateRun) forward(e handoff.Event) {
	if err := u.a.j.Phase(e.Phase); err != nil {
		u.a.log.Debug("journal phase", "err", err)
	}
	u.a.emit(context.Background(), u.event(Event{Phase: e.Phase, From: e.From, To: e.To, Epoch: e.Epoch, Tick: e.Tick, Error: e.Error}))
}

func (a *Agent) removeImage(ctx context.Context, image, which string) {
	if err := a.images.RemoveImage(ctx, image); err != nil {
		a.log.Warn("remove "+which+" image", "image", image, "err", err)
	}
}
