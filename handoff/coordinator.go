package handoff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/hw/mono"
)

// Strategy is how an update replaces the running instance.
type Strategy string

// Strategies.
const (
	// StrategyHandoff streams state to a shadowing candidate and cuts over
	// at a tick boundary (the default).
	StrategyHandoff Strategy = "handoff"
	// StrategyStopStart stops the old instance, then starts the new one
	// with no state (what Mender, Kanto and Torizon do).
	StrategyStopStart Strategy = "stop-start"
	// StrategyStartThenStop starts the new instance with no state beside
	// the old one, then stops the old (balena's hand-over).
	StrategyStartThenStop Strategy = "start-then-stop"
)

// Mode is how the runtime starts an instance.
type Mode string

// Modes.
const (
	// ModeCandidate attaches read-only and shadows the owner's frames.
	ModeCandidate Mode = "candidate"
	// ModeResume attaches and takes the hardware at once, without state,
	// at Spec.Epoch (the baselines).
	ModeResume Mode = "resume"
)

// Spec is an instance for the Runtime to start.
type Spec struct {
	Instance string
	Mode     Mode
	Epoch    uint64 // ModeResume only
}

// Runtime starts and stops app instances for the coordinator: processes in
// the rig, containers on the drone.
type Runtime interface {
	// Start starts an instance and returns once it is running.
	Start(ctx context.Context, s Spec) error
	// Stop stops an instance (SIGTERM, then SIGKILL after a grace period)
	// and returns once it is gone.
	Stop(ctx context.Context, instance string) error
}

// ExitReporter is a Runtime that also knows when an instance's process
// has ended. The coordinator then aborts at once when a candidate dies
// while shadowing, instead of waiting out the sync timeout.
type ExitReporter interface {
	// Exited reports whether instance's process ended since its last
	// Start, and how ("exit code 1", "killed by signal 9").
	Exited(instance string) (how string, exited bool)
}

// Plan is one update of app from Owner to Candidate. The zero value of each
// optional field means the default noted beside it.
type Plan struct {
	Strategy  Strategy // "" = handoff
	Owner     string   // the running owner instance (required)
	Candidate string   // the new instance (required)
	// Accepts are the state schemas the candidate declares (its image
	// label); an owner publishing another schema refuses the update before
	// the candidate starts. nil = not checked.
	Accepts     []string
	SyncTimeout time.Duration // shadow must sync within; 0 = 10 s
	LeadTicks   int           // cut-over this many ticks ahead; 0 = 20
	Probation   time.Duration // 0 = 3 s
	MaxTiltDeg  float64       // probation envelope; 0 = 30°
	// MaxDiverged is how many of the new owner's ticks the standby may find
	// divergent during probation; 0 = 20.
	MaxDiverged uint64
	// Revert forces a revert at the end of probation (an operator's
	// rollback, and tests).
	Revert bool
}

func (p Plan) withDefaults() (Plan, error) {
	if p.Strategy == "" {
		p.Strategy = StrategyHandoff
	}
	if p.Owner == "" || p.Candidate == "" || p.Owner == p.Candidate {
		return p, errors.New("handoff: a plan needs distinct owner and candidate instances")
	}
	switch p.Strategy {
	case StrategyHandoff, StrategyStopStart, StrategyStartThenStop:
	default:
		return p, fmt.Errorf("handoff: unknown strategy %q: use handoff, stop-start or start-then-stop", p.Strategy)
	}
	if p.SyncTimeout == 0 {
		p.SyncTimeout = 10 * time.Second
	}
	if p.LeadTicks == 0 {
		p.LeadTicks = 20
	}
	if p.Probation == 0 {
		p.Probation = 3 * time.Second
	}
	if p.MaxTiltDeg == 0 {
		p.MaxTiltDeg = 30
	}
	if p.MaxDiverged == 0 {
		p.MaxDiverged = 20
	}
	return p, nil
}

// Outcomes.
const (
	OutcomeCommitted = "committed" // the candidate owns the hardware; the old instance is gone
	OutcomeReverted  = "reverted"  // the candidate took over, then control went back to the old owner
	OutcomeAborted   = "aborted"   // stopped before cut-over; the owner was never touched
	OutcomeRefused   = "refused"   // refused before the candidate started
)

// Result is what an update did.
type Result struct {
	Outcome     string  `json:"outcome"`
	Strategy    string  `json:"strategy"`
	Owner       string  `json:"owner"` // who owns the hardware at the end
	Epoch       uint64  `json:"epoch"` // its epoch
	Reason      string  `json:"reason,omitempty"`
	CutoverTick int64   `json:"cutover_tick,omitempty"`
	CutoverNs   int64   `json:"cutover_ns,omitempty"` // the cut-over tick's time, CLOCK_MONOTONIC
	StartNs     int64   `json:"start_ns"`
	StartMs     float64 `json:"start_ms"`               // runtime start of the candidate
	SyncMs      float64 `json:"sync_ms,omitempty"`      // candidate start to synced
	ToCommitMs  float64 `json:"to_commit_ms,omitempty"` // cut-over to commit (or revert)
	TakenBack   bool    `json:"taken_back,omitempty"`   // the standby took back on its own
}

// ErrIncompatible is the class of errors for a candidate that cannot read
// the owner's state schema.
var ErrIncompatible = errors.New("handoff: incompatible state schema")

// Coordinator runs updates of one app. The agent drives it.
type Coordinator struct {
	nc     *nats.Conn
	app    string
	sub    Subjects
	rt     Runtime
	log    *slog.Logger
	period int64
	subs   []*nats.Subscription

	mu     sync.Mutex
	status map[string]Status
	frames map[string]frameInfo // newest frame per instance
	// OnEvent, if set, receives every event (also published on the events
	// subject). Set it before Run.
	OnEvent func(Event)
}

type frameInfo struct {
	tick, tickNs int64
	epoch        uint64
	schema       string
	health       Health
	seen         int64 // when it arrived
}

// NewCoordinator follows app's frames and statuses on nc.
func NewCoordinator(nc *nats.Conn, app string, rt Runtime, log *slog.Logger) (*Coordinator, error) {
	if err := CheckApp(app); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{nc: nc, app: app, sub: SubjectsFor(app), rt: rt, log: log,
		status: map[string]Status{}, frames: map[string]frameInfo{}}
	fs, err := nc.Subscribe(c.sub.Frames(), func(m *nats.Msg) {
		// Only the header: the coordinator never looks at the state.
		var f struct {
			Schema   string `json:"schema"`
			Instance string `json:"instance"`
			Epoch    uint64 `json:"epoch"`
			Tick     int64  `json:"tick"`
			TickNs   int64  `json:"tick_ns"`
			Health   Health `json:"health"`
		}
		if json.Unmarshal(m.Data, &f) != nil || f.Instance == "" || f.Schema == "" || f.Epoch == 0 || f.Tick <= 0 || f.TickNs <= 0 {
			return
		}
		c.mu.Lock()
		if f.TickNs > 0 && f.Tick > 0 {
			c.period = f.TickNs / f.Tick
		}
		c.frames[f.Instance] = frameInfo{tick: f.Tick, tickNs: f.TickNs, epoch: f.Epoch, schema: f.Schema, health: f.Health, seen: mono.Now()}
		c.mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("handoff: coordinator: %w", err)
	}
	fs.SetPendingLimits(4096, 64<<20)
	ss, err := nc.Subscribe(c.sub.Status("*"), func(m *nats.Msg) {
		var s Status
		if json.Unmarshal(m.Data, &s) != nil || s.Instance == "" {
			return
		}
		c.mu.Lock()
		c.status[s.Instance] = s
		c.mu.Unlock()
	})
	if err != nil {
		fs.Unsubscribe()
		return nil, fmt.Errorf("handoff: coordinator: %w", err)
	}
	c.subs = []*nats.Subscription{fs, ss}
	return c, nc.Flush()
}

// Close stops following.
func (c *Coordinator) Close() {
	for _, s := range c.subs {
		s.Unsubscribe()
	}
}

func (c *Coordinator) emit(e Event) {
	e.App = c.app
	e.T = mono.Now()
	e.Wall = time.Now().UTC().Format(time.RFC3339Nano)
	c.log.Info("handoff: "+e.Phase, "strategy", e.Strategy, "from", e.From, "to", e.To, "epoch", e.Epoch, "tick", e.Tick, "err", e.Error)
	if b, err := json.Marshal(e); err == nil {
		c.nc.Publish(c.sub.Events(), b)
	}
	if c.OnEvent != nil {
		c.OnEvent(e)
	}
}

func (c *Coordinator) frame(instance string) (frameInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.frames[instance]
	return f, ok
}

func (c *Coordinator) statusOf(instance string) (Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.status[instance]
	return s, ok
}

// forget drops what instance last reported.
func (c *Coordinator) forget(instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.status, instance)
	delete(c.frames, instance)
}

// fresh reports whether instance published a frame in the last d.
func (c *Coordinator) fresh(instance string, d time.Duration) (frameInfo, bool) {
	f, ok := c.frame(instance)
	return f, ok && mono.Now()-f.seen <= int64(d)
}

// poll calls cond every 5 ms until it returns done or an error, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := cond()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Coordinator) request(ctx context.Context, instance string, ctl Control) error {
	b, _ := json.Marshal(ctl)
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	m, err := c.nc.RequestWithContext(ctx, c.sub.Control(instance), b)
	if err != nil {
		return fmt.Errorf("handoff: %s to %s: %w", ctl.Op, instance, err)
	}
	var r Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("handoff: %s to %s: bad reply: %w", ctl.Op, instance, err)
	}
	if !r.OK {
		return fmt.Errorf("handoff: %s refused by %s: %s: %w", ctl.Op, instance, r.Error, errRefused)
	}
	return nil
}

// errRefused marks a participant's refusal (as opposed to no answer).
var errRefused = errors.New("refused")

// Run performs one update. It returns the result, and an error when the
// update did not commit (the result says what state it left).
func (c *Coordinator) Run(ctx context.Context, plan Plan) (Result, error) {
	plan, err := plan.withDefaults()
	if err != nil {
		return Result{Outcome: OutcomeRefused, Reason: err.Error()}, err
	}
	res := Result{Strategy: string(plan.Strategy), Owner: plan.Owner, StartNs: mono.Now()}
	ev := Event{Strategy: string(plan.Strategy), From: plan.Owner, To: plan.Candidate}

	// The owner must be flying and publishing.
	var of frameInfo
	err = poll(withTimeout(ctx, 2*time.Second), func() (bool, error) {
		var ok bool
		of, ok = c.fresh(plan.Owner, 200*time.Millisecond)
		return ok, nil
	})
	if err != nil {
		res.Outcome, res.Reason = OutcomeRefused, fmt.Sprintf("owner %s publishes no frames: is it running with a NATS URL?", plan.Owner)
		ev.Phase, ev.Error = "refused", res.Reason
		c.emit(ev)
		return res, errors.New("handoff: " + res.Reason)
	}
	res.Epoch = of.epoch
	if plan.Accepts != nil && !slices.Contains(plan.Accepts, of.schema) {
		res.Outcome = OutcomeRefused
		res.Reason = fmt.Sprintf("candidate accepts state schemas %v, owner publishes %q", plan.Accepts, of.schema)
		ev.Phase, ev.Error = "refused", res.Reason
		c.emit(ev)
		return res, fmt.Errorf("%w: %s; build the candidate with a schema it can read", ErrIncompatible, res.Reason)
	}

	switch plan.Strategy {
	case StrategyStopStart, StrategyStartThenStop:
		return c.baseline(ctx, plan, res, ev, of.epoch)
	}

	// 1. prepare
	ev.Phase, ev.Epoch = "prepare", of.epoch
	c.emit(ev)
	// A release run before under the same instance name (a rollback) left
	// its last status and frame here: they must not pass for the new one's.
	c.forget(plan.Candidate)
	t0 := mono.Now()
	if err := c.rt.Start(ctx, Spec{Instance: plan.Candidate, Mode: ModeCandidate}); err != nil {
		return c.abort(ctx, plan, res, ev, fmt.Sprintf("start candidate: %v", err))
	}
	res.StartMs = msSince(t0)

	// 2. shadow until synced
	ev.Phase = "shadow"
	c.emit(ev)
	err = poll(withTimeout(ctx, plan.SyncTimeout), func() (bool, error) {
		if _, ok := c.fresh(plan.Owner, 200*time.Millisecond); !ok {
			return false, errors.New("the owner stopped publishing frames")
		}
		if er, ok := c.rt.(ExitReporter); ok {
			if how, exited := er.Exited(plan.Candidate); exited {
				return false, fmt.Errorf("the candidate exited while shadowing (%s)", how)
			}
		}
		s, ok := c.statusOf(plan.Candidate)
		if !ok {
			return false, nil
		}
		age := mono.Now() - s.T
		if age > int64(time.Second) {
			return false, fmt.Errorf("candidate stopped reporting %.0f ms ago (crashed?)", float64(age)/1e6)
		}
		// A status is only trusted while fresh: a delayed path must not
		// pass for synced.
		return s.Synced && age <= int64(100*time.Millisecond), nil
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			s, _ := c.statusOf(plan.Candidate)
			err = fmt.Errorf("no sync within %v (streak %d, diverged %d, lag %.1f ms, incompatible frames %d)",
				plan.SyncTimeout, s.Streak, s.Diverged, s.LagMs, s.Incompatible)
		}
		return c.abort(ctx, plan, res, ev, err.Error())
	}
	res.SyncMs = msSince(t0)
	ev.Phase = "synced"
	c.emit(ev)

	// 3. cut-over
	of, _ = c.frame(plan.Owner)
	h := Handover{Tick: of.tick + int64(plan.LeadTicks), To: plan.Candidate, Epoch: of.epoch + 1, Fallback: of.epoch + 2}
	if err := c.request(ctx, plan.Owner, Control{Op: "handover", Handover: &h}); err != nil {
		return c.abort(ctx, plan, res, ev, err.Error())
	}
	res.CutoverTick = h.Tick
	res.CutoverNs = h.Tick * c.periodNs()
	ev.Phase, ev.Epoch, ev.Tick = "cutover", h.Epoch, h.Tick
	c.emit(ev)
	took := false
	err = poll(withTimeout(ctx, time.Duration(res.CutoverNs-mono.Now())+time.Second), func() (bool, error) {
		if f, ok := c.frame(plan.Candidate); ok && f.tick >= h.Tick && f.epoch == h.Epoch {
			took = true
			return true, nil
		}
		if f, ok := c.frame(plan.Owner); ok && f.epoch == h.Fallback {
			return true, nil // the owner took back: the candidate never wrote
		}
		return false, nil
	})
	if err != nil || !took {
		// Nothing was written by the candidate: the owner kept (or took
		// back) the hardware.
		return c.abort(ctx, plan, res, ev, "the candidate did not take over at the cut-over tick")
	}
	cutAt := mono.Now()

	// 4. probation
	ev.Phase = "probation"
	c.emit(ev)
	s0, _ := c.statusOf(plan.Owner)
	var unhealthy string
	deadline := mono.Now() + int64(plan.Probation)
	err = poll(ctx, func() (bool, error) {
		if f, ok := c.frame(plan.Owner); ok && f.epoch == h.Fallback {
			unhealthy, res.TakenBack = "the new owner fell silent; the standby took back", true
			return true, nil
		}
		f, ok := c.fresh(plan.Candidate, 250*time.Millisecond)
		switch {
		case !ok:
			unhealthy = "the new owner stopped publishing frames"
		case math.Abs(f.health.RollDeg) > plan.MaxTiltDeg || math.Abs(f.health.PitchDeg) > plan.MaxTiltDeg:
			unhealthy = fmt.Sprintf("attitude out of the envelope: roll %.1f°, pitch %.1f°", f.health.RollDeg, f.health.PitchDeg)
		}
		if s, ok := c.statusOf(plan.Owner); ok && s.Diverged-s0.Diverged > plan.MaxDiverged {
			unhealthy = fmt.Sprintf("the standby found %d divergent ticks", s.Diverged-s0.Diverged)
		}
		if unhealthy != "" {
			return true, nil
		}
		if mono.Now() >= deadline {
			if plan.Revert {
				unhealthy = "revert requested"
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		unhealthy = "probation interrupted: " + err.Error()
	}
	if unhealthy != "" {
		return c.revert(ctx, plan, res, ev, h, cutAt, unhealthy)
	}

	// 5. commit
	if err := c.request(ctx, plan.Owner, Control{Op: "retire"}); err != nil {
		if errors.Is(err, errRefused) {
			// It took back an instant before: it owns the hardware and the
			// candidate is fenced out. Revert, do not stop it.
			res.TakenBack = true
			return c.revert(ctx, plan, res, ev, h, cutAt, "the standby took back before it was retired")
		}
		c.log.Warn("standby did not answer retire; stopping it", "err", err)
	}
	if err := c.rt.Stop(context.WithoutCancel(ctx), plan.Owner); err != nil {
		c.log.Warn("stopping the retired standby", "err", err)
	}
	res.Outcome, res.Owner, res.Epoch = OutcomeCommitted, plan.Candidate, h.Epoch
	res.ToCommitMs = msSince(cutAt)
	ev.Phase = "commit"
	c.emit(ev)
	return res, nil
}

// revert gives the hardware back to the standby after a cut-over.
func (c *Coordinator) revert(ctx context.Context, plan Plan, res Result, ev Event, h Handover, cutAt int64, why string) (Result, error) {
	ev.Phase, ev.Error = "revert", why
	c.emit(ev)
	back := h.Fallback
	if !res.TakenBack {
		if f, ok := c.fresh(plan.Candidate, 100*time.Millisecond); ok {
			hb := Handover{Tick: f.tick + int64(plan.LeadTicks), To: plan.Owner, Epoch: h.Fallback, Fallback: h.Fallback + 1}
			if err := c.request(ctx, plan.Candidate, Control{Op: "handover", Handover: &hb}); err != nil {
				c.log.Warn("hand-back refused; the standby will take back when the candidate stops", "err", err)
			}
		}
	}
	// Whichever way (hand-back or the standby's own take-back), the old
	// owner ends up publishing at the fallback epoch.
	err := poll(withTimeout(ctx, 3*time.Second), func() (bool, error) {
		f, ok := c.frame(plan.Owner)
		return ok && f.epoch >= back, nil
	})
	stopErr := c.rt.Stop(context.WithoutCancel(ctx), plan.Candidate)
	if err != nil {
		// The hand-back did not show: stopping the candidate makes the
		// standby take back; wait for it once more.
		err = poll(withTimeout(ctx, 2*time.Second), func() (bool, error) {
			f, ok := c.frame(plan.Owner)
			return ok && f.epoch >= back, nil
		})
	}
	if stopErr != nil {
		c.log.Warn("stopping the candidate", "err", stopErr)
	}
	res.Outcome, res.Owner, res.Reason = OutcomeReverted, plan.Owner, why
	if f, ok := c.frame(plan.Owner); ok {
		res.Epoch = f.epoch
	}
	res.ToCommitMs = msSince(cutAt)
	ev.Phase, ev.Epoch = "done", res.Epoch
	if err != nil {
		ev.Error = "the old owner is not publishing after the revert: " + err.Error()
		c.emit(ev)
		return res, errors.New("handoff: revert did not complete: " + ev.Error)
	}
	ev.Error = why
	c.emit(ev)
	return res, fmt.Errorf("handoff: reverted to %s: %s", plan.Owner, why)
}

// abort stops the candidate before cut-over; the owner is untouched.
func (c *Coordinator) abort(ctx context.Context, plan Plan, res Result, ev Event, why string) (Result, error) {
	if err := c.rt.Stop(context.WithoutCancel(ctx), plan.Candidate); err != nil {
		c.log.Warn("stopping the aborted candidate", "err", err)
	}
	res.Outcome, res.Owner, res.Reason = OutcomeAborted, plan.Owner, why
	ev.Phase, ev.Error = "abort", why
	c.emit(ev)
	return res, errors.New("handoff: aborted: " + why)
}

// baseline runs stop-start or start-then-stop: no state moves.
func (c *Coordinator) baseline(ctx context.Context, plan Plan, res Result, ev Event, epoch uint64) (Result, error) {
	ev.Phase = "prepare"
	c.emit(ev)
	next := epoch + 1
	t0 := mono.Now()
	if plan.Strategy == StrategyStopStart {
		if err := c.rt.Stop(ctx, plan.Owner); err != nil {
			return res, fmt.Errorf("handoff: stop old owner: %w", err)
		}
	}
	c.forget(plan.Candidate) // as in Run: a reused name's old reports are not the new one's
	if err := c.rt.Start(ctx, Spec{Instance: plan.Candidate, Mode: ModeResume, Epoch: next}); err != nil {
		return res, fmt.Errorf("handoff: start new instance: %w", err)
	}
	res.StartMs = msSince(t0)
	var nf frameInfo
	err := poll(withTimeout(ctx, 10*time.Second), func() (bool, error) {
		var ok bool
		nf, ok = c.frame(plan.Candidate)
		return ok && nf.epoch == next, nil
	})
	if err != nil {
		return res, fmt.Errorf("handoff: the new instance never drove the hardware: %w", err)
	}
	res.CutoverTick, res.CutoverNs = nf.tick, nf.tickNs
	ev.Phase, ev.Epoch, ev.Tick = "cutover", next, nf.tick
	c.emit(ev)
	if plan.Strategy == StrategyStartThenStop {
		if err := c.rt.Stop(ctx, plan.Owner); err != nil {
			return res, fmt.Errorf("handoff: stop old owner: %w", err)
		}
	}
	res.Outcome, res.Owner, res.Epoch = OutcomeCommitted, plan.Candidate, next
	res.ToCommitMs = msSince(t0)
	ev.Phase = "commit"
	c.emit(ev)
	return res, nil
}

func (c *Coordinator) periodNs() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.period
}

func msSince(t int64) float64 { return float64(mono.Now()-t) / 1e6 }

// withTimeout is context.WithTimeout for poll loops whose cancel is
// released when the parent ends.
func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(ctx, cancel)
	return ctx
}
