// Package coordinator runs app updates on the drone: it starts the
// candidate through a Runtime, watches the hand-over (package handoff's
// frames and statuses on the on-board NATS, the motors' lease), asks the
// owner to cut over, judges probation and commits or reverts. The agent
// drives it; nothing of it runs inside the flight app.
package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// Mode is how the runtime starts an instance. The values are the flight
// app's FLIGHT_START (images/flight/app.Start).
type Mode string

// Modes.
const (
	// ModeCold is the first owner, on the ground: it initialises the chips
	// and takes off, at Spec.Epoch.
	ModeCold Mode = "cold"
	// ModeCandidate attaches read-only and shadows the owner's frames.
	ModeCandidate Mode = "candidate"
	// ModeResume attaches and takes the hardware at once, without state,
	// at Spec.Epoch (the baselines).
	ModeResume Mode = "resume"
)

// Spec is an instance for the Runtime to start.
type Spec struct {
	Instance string
	Image    string // what it runs: Plan.Image
	Mode     Mode
	Epoch    uint64 // ModeCold and ModeResume only
}

// Env is the settings an instance started for s reads (the flight app's
// FLIGHT_START and FLIGHT_EPOCH), in the one place both runtimes (the
// agent's containers, the rig's processes) take them from.
func (s Spec) Env() []string {
	env := []string{"FLIGHT_START=" + string(s.Mode)}
	if s.Epoch > 0 {
		env = append(env, "FLIGHT_EPOCH="+strconv.FormatUint(s.Epoch, 10))
	}
	return env
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

// Defaults of Plan's zero fields, and the coordinator's other durations.
const (
	DefaultSyncTimeout = 10 * time.Second
	// DefaultLead is how far ahead of now the cut-over tick is set: the
	// candidate must answer that it expects the hand-over, and then the
	// owner get the request (two NATS round trips, 1-50 ms each on a
	// loaded machine), before it comes.
	DefaultLead = 100 * time.Millisecond
	// DefaultProbation is how long the new owner flies with the old one
	// warm beside it before the update commits.
	DefaultProbation = 3 * time.Second
	// FrameSilence is how long an instance's frames may stop reaching the
	// coordinator before it is judged gone from the hand-over: a loaded
	// machine delays frames by tens of milliseconds and a faulty link by
	// more than half a second with nothing wrong, and liveness is judged
	// at the lease anyway.
	FrameSilence = time.Second
	// MinWriteRate is the share of the loop's rate that the lease must see
	// the new owner write over probation: a loop that skips ticks now and
	// then on a loaded machine passes, one that writes at half rate does
	// not. Where the old owner wrote less than the loop's rate while the
	// candidate started, the share is of what it wrote: on a machine so
	// loaded that a 1000 Hz loop ran half its ticks (a CI run), the new
	// owner did the same and a healthy update was reverted. It is judged
	// over probations (and starts) of at least RateWindow: a rate over less
	// says nothing.
	MinWriteRate = 0.5
	RateWindow   = 100 * time.Millisecond
)

// Plan is one update of app from Owner to Candidate. The zero value of each
// optional field means the default noted beside it.
type Plan struct {
	Strategy  strategy.Strategy // "" = strategy.Handoff
	Owner     string            // the running owner instance (required)
	Candidate string            // the new instance (required)
	// Image is what the candidate runs (required): the release's image
	// pinned by digest for the agent's containers, a binary for the rig's
	// processes. The Runtime gets it in the Spec.
	Image string
	// OnEvent, if set, receives each event of this update as it happens
	// (they are also published on the events subject).
	OnEvent func(handoff.Event)
	// Accepts are the state schemas the candidate declares (its image
	// label); an owner publishing another schema refuses the update before
	// the candidate starts. nil = not checked.
	Accepts     []string
	SyncTimeout time.Duration // shadow must sync within; 0 = DefaultSyncTimeout
	Lead        time.Duration // cut-over this far ahead; 0 = DefaultLead
	Probation   time.Duration // 0 = DefaultProbation
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
		p.Strategy = strategy.Handoff
	}
	if p.Owner == "" || p.Candidate == "" || p.Owner == p.Candidate {
		return p, errors.New("coordinator: a plan needs distinct owner and candidate instances")
	}
	if p.Image == "" {
		return p, errors.New("coordinator: a plan needs the candidate's image")
	}
	if err := strategy.Check(string(p.Strategy)); err != nil {
		return p, fmt.Errorf("coordinator: %w", err)
	}
	p.SyncTimeout = cmp.Or(p.SyncTimeout, DefaultSyncTimeout)
	p.Lead = cmp.Or(p.Lead, DefaultLead)
	p.Probation = cmp.Or(p.Probation, DefaultProbation)
	if p.MaxTiltDeg == 0 {
		p.MaxTiltDeg = 30
	}
	if p.MaxDiverged == 0 {
		p.MaxDiverged = 20
	}
	return p, nil
}

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
	// Retryable marks an abort that timing caused (the owner flew on
	// untouched, the candidate was sound): trying again is expected to
	// succeed.
	Retryable bool `json:"retryable,omitempty"`
}

// ErrIncompatible is the class of errors for a candidate that cannot read
// the owner's state schema.
var ErrIncompatible = errors.New("coordinator: incompatible state schema")

// Config configures a coordinator. The zero value of each
// optional field means the default noted beside it.
type Config struct {
	App string // required: the app whose instances it updates
	// Lease is the hardware's lease (required): whether an instance drives
	// the motors is read there, not inferred from its frames.
	Lease lease.Reader
	Log   *slog.Logger // nil = discard
}

// Coordinator runs updates of one app. The agent drives it.
type Coordinator struct {
	nc    *nats.Conn
	app   string
	sub   handoff.Subjects
	rt    Runtime
	lease lease.Reader
	log   *slog.Logger
	subs  []*nats.Subscription
	// frameSub is the frames' subscription (in subs), whose queue says
	// whether this coordinator is behind them.
	frameSub *nats.Subscription

	mu     sync.Mutex
	period int64
	status map[string]handoff.Status
	frames map[string]frameInfo // newest frame per instance
}

type frameInfo struct {
	tick, tickNs int64
	epoch        uint64
	schema       string
	health       handoff.Health
	seen         int64 // when it arrived
}

// New returns a coordinator following the app's frames and statuses on nc.
func New(nc *nats.Conn, rt Runtime, cfg Config) (*Coordinator, error) {
	if err := handoff.CheckApp(cfg.App); err != nil {
		return nil, err
	}
	if cfg.Lease == nil {
		return nil, errors.New("coordinator: a coordinator needs the hardware's lease")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{nc: nc, app: cfg.App, sub: handoff.SubjectsFor(cfg.App), rt: rt, lease: cfg.Lease, log: cfg.Log,
		status: map[string]handoff.Status{}, frames: map[string]frameInfo{}}
	fs, err := nc.Subscribe(c.sub.Frames(), func(m *nats.Msg) { c.onFrame(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("coordinator: coordinator: %w", err)
	}
	fs.SetPendingLimits(4096, 64<<20)
	ss, err := nc.Subscribe(c.sub.Status("*"), func(m *nats.Msg) {
		var s handoff.Status
		if json.Unmarshal(m.Data, &s) != nil || s.Instance == "" {
			return
		}
		c.mu.Lock()
		c.status[s.Instance] = s
		c.mu.Unlock()
	})
	if err != nil {
		fs.Unsubscribe()
		return nil, fmt.Errorf("coordinator: coordinator: %w", err)
	}
	c.frameSub, c.subs = fs, []*nats.Subscription{fs, ss}
	return c, nc.Flush()
}

// onFrame keeps the newest frame header per instance; a malformed frame is
// no instance's.
func (c *Coordinator) onFrame(data []byte) {
	f, err := handoff.DecodeFrame(data)
	if err != nil || f.TickNs <= 0 {
		return
	}
	c.mu.Lock()
	c.period = f.TickNs / f.Tick
	c.frames[f.Instance] = frameInfo{tick: f.Tick, tickNs: f.TickNs, epoch: f.Epoch, schema: f.Schema, health: f.Health, seen: mono.Now()}
	c.mu.Unlock()
}

// Close stops following.
func (c *Coordinator) Close() {
	for _, s := range c.subs {
		s.Unsubscribe()
	}
}

// emit stamps e and publishes it on the events subject.
func (c *Coordinator) emit(e handoff.Event) handoff.Event {
	e.App = c.app
	e.T = mono.Now()
	e.Wall = time.Now().UTC().Format(time.RFC3339Nano)
	c.log.Info("handoff: "+e.Phase, "strategy", e.Strategy, "from", e.From, "to", e.To, "epoch", e.Epoch, "tick", e.Tick, "err", e.Error)
	if b, err := json.Marshal(e); err == nil {
		c.nc.Publish(c.sub.Events(), b)
	}
	return e
}

func (c *Coordinator) frame(instance string) (frameInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.frames[instance]
	return f, ok
}

func (c *Coordinator) statusOf(instance string) (handoff.Status, bool) {
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

// fresh reports whether instance's frames reached us in the last d, or
// may have (behind).
func (c *Coordinator) fresh(instance string, d time.Duration) (frameInfo, bool) {
	f, ok := c.frame(instance)
	return f, ok && (mono.Now()-f.seen <= int64(d) || c.behind())
}

// behind reports whether frames are still queued for this coordinator.
// Then an instance's frames not seen for a while prove nothing: a loaded
// machine starves the agent, which falls seconds behind 1000 frames a
// second (a slow consumer: NATS drops the oldest beyond the queue's
// limit), and it took its own backlog for the new owner's silence and
// reverted a healthy update.
func (c *Coordinator) behind() bool {
	n, _, err := c.frameSub.Pending()
	return err == nil && n > 0
}

func (c *Coordinator) periodNs() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.period
}

// tickIn is the first tick at least d from now.
func (c *Coordinator) tickIn(d time.Duration) int64 {
	period := c.periodNs()
	return mono.Now()/period + int64(math.Ceil(float64(d)/float64(period)))
}

// beat reads the lease; a failed read is logged and reads as nothing
// known (zero).
func (c *Coordinator) beat() lease.Beat {
	b, err := c.lease.Beat()
	if err != nil {
		c.log.Warn("coordinator: cannot read the lease", "err", err)
	}
	return b
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

func (c *Coordinator) request(ctx context.Context, instance string, ctl handoff.Control) error {
	b, _ := json.Marshal(ctl)
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	m, err := c.nc.RequestWithContext(ctx, c.sub.Control(instance), b)
	if err != nil {
		return fmt.Errorf("coordinator: %s to %s: %w", ctl.Op, instance, err)
	}
	var r handoff.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("coordinator: %s to %s: bad reply: %w", ctl.Op, instance, err)
	}
	if !r.OK {
		return fmt.Errorf("coordinator: %s refused by %s: %s: %w", ctl.Op, instance, r.Error, errRefused)
	}
	return nil
}

// handOver asks owner, which drives at epoch from, to hand over with h,
// once h.To has answered that it expects it: never the other way round, so
// the owner never stops writing for an instance that does not know it is
// to start (the owner's stamped frames would tell it too, but a loaded
// machine delays them by more than the lead).
func (c *Coordinator) handOver(ctx context.Context, owner string, from uint64, h handoff.Handover) error {
	if err := c.request(ctx, h.To, handoff.Control{Op: "expect", Handover: &h, From: from}); err != nil {
		return err
	}
	return c.request(ctx, owner, handoff.Control{Op: "handover", Handover: &h})
}

// errRefused marks a participant's refusal (as opposed to no answer).
var errRefused = errors.New("refused")

// Run performs one update. It returns the result, and an error when the
// update did not commit (the result says what state it left).
func (c *Coordinator) Run(ctx context.Context, plan Plan) (Result, error) {
	plan, err := plan.withDefaults()
	if err != nil {
		return Result{Outcome: report.OutcomeRefused, Reason: err.Error()}, err
	}
	u := &update{c: c, plan: plan,
		res: Result{Strategy: string(plan.Strategy), Owner: plan.Owner, StartNs: mono.Now()},
		ev:  handoff.Event{Strategy: string(plan.Strategy), From: plan.Owner, To: plan.Candidate}}
	if err := u.check(ctx); err != nil {
		return u.res, err
	}
	if plan.Strategy != strategy.Handoff {
		return u.baseline(ctx)
	}
	for _, phase := range []func(context.Context) error{u.prepare, u.shadow, u.cutover} {
		if err := phase(ctx); err != nil {
			return u.abort(ctx, err)
		}
	}
	if why := u.probation(ctx); why != "" {
		return u.revert(ctx, why)
	}
	return u.commit(ctx)
}

// update is one Run: the plan, what it did so far, and its events.
type update struct {
	c       *Coordinator
	plan    Plan
	res     Result
	ev      handoff.Event
	epoch   uint64           // the owner's epoch at the start
	started int64            // when the candidate's start was asked for
	before  lease.Beat       // the lease then, for the old owner's write rate
	ownerHz float64          // the old owner's writes/s from then to the cut-over; 0 = unknown
	h       handoff.Handover // the cut-over, once asked for
	cutAt   int64            // when the candidate was seen driving
}

// retryable marks an abort cause that timing produced.
type retryable struct{ error }

func (u *update) emit(phase, err string) {
	u.ev.Phase, u.ev.Error = phase, err
	e := u.c.emit(u.ev)
	if u.plan.OnEvent != nil {
		u.plan.OnEvent(e)
	}
}

// check refuses the update unless the owner flies and publishes a schema
// the candidate accepts.
func (u *update) check(ctx context.Context) error {
	var of frameInfo
	err := poll(withTimeout(ctx, 2*time.Second), func() (bool, error) {
		var ok bool
		of, ok = u.c.fresh(u.plan.Owner, FrameSilence)
		return ok, nil
	})
	if err != nil {
		return u.refuse(fmt.Sprintf("owner %s publishes no frames: is it running with a NATS URL?", u.plan.Owner), nil)
	}
	u.epoch, u.res.Epoch, u.ev.Epoch = of.epoch, of.epoch, of.epoch
	if u.plan.Accepts != nil && !slices.Contains(u.plan.Accepts, of.schema) {
		return u.refuse(fmt.Sprintf("candidate accepts state schemas %v, owner publishes %q", u.plan.Accepts, of.schema), ErrIncompatible)
	}
	return nil
}

func (u *update) refuse(why string, class error) error {
	u.res.Outcome, u.res.Reason = report.OutcomeRefused, why
	u.emit(report.PhaseRefused, why)
	if class != nil {
		return fmt.Errorf("%w: %s; build the candidate with a schema it can read", class, why)
	}
	return errors.New("coordinator: " + why)
}

// prepare starts the candidate.
func (u *update) prepare(ctx context.Context) error {
	u.emit(report.PhasePrepare, "")
	// A release run before under the same instance name (a rollback) left
	// its last status and frame here: they must not pass for the new one's.
	u.c.forget(u.plan.Candidate)
	u.started, u.before = mono.Now(), u.c.beat()
	if err := u.c.rt.Start(ctx, Spec{Instance: u.plan.Candidate, Image: u.plan.Image, Mode: ModeCandidate}); err != nil {
		return fmt.Errorf("start candidate: %v", err)
	}
	u.res.StartMs = msSince(u.started)
	return nil
}

// shadow waits until the candidate reports synced.
func (u *update) shadow(ctx context.Context) error {
	u.emit(report.PhaseShadow, "")
	err := poll(withTimeout(ctx, u.plan.SyncTimeout), u.synced)
	if errors.Is(err, context.DeadlineExceeded) {
		s, _ := u.c.statusOf(u.plan.Candidate)
		err = fmt.Errorf("no sync within %v (streak %d, diverged %d, lag %.1f ms, incompatible frames %d)",
			u.plan.SyncTimeout, s.Streak, s.Diverged, s.LagMs, s.Incompatible)
	}
	if err != nil {
		return err
	}
	u.res.SyncMs = msSince(u.started)
	u.emit(report.PhaseSynced, "")
	return nil
}

func (u *update) synced() (bool, error) {
	if _, ok := u.c.fresh(u.plan.Owner, FrameSilence); !ok {
		return false, errors.New("the owner stopped publishing frames")
	}
	if er, ok := u.c.rt.(ExitReporter); ok {
		if how, exited := er.Exited(u.plan.Candidate); exited {
			return false, fmt.Errorf("the candidate exited while shadowing (%s)", how)
		}
	}
	s, ok := u.c.statusOf(u.plan.Candidate)
	if !ok {
		return false, nil
	}
	age := mono.Now() - s.T
	if age > int64(2*FrameSilence) {
		return false, fmt.Errorf("candidate stopped reporting %.0f ms ago (crashed?)", float64(age)/1e6)
	}
	// A status is only trusted while fresh: a delayed path must not pass
	// for synced.
	return s.Synced && age <= int64(handoff.DefaultMaxLag), nil
}

// cutover asks the owner to hand over a lead ahead, then waits until the
// lease shows the candidate driving.
func (u *update) cutover(ctx context.Context) error {
	period := u.c.periodNs()
	u.ownerHz, _ = rateSince(u.before, u.started, u.c.beat())
	e := u.epoch
	u.h = handoff.Handover{Tick: u.c.tickIn(u.plan.Lead), To: u.plan.Candidate, Epoch: e + 1, Fallback: e + 2}
	if err := u.c.handOver(ctx, u.plan.Owner, e, u.h); err != nil {
		return retryable{err}
	}
	u.res.CutoverTick, u.res.CutoverNs = u.h.Tick, u.h.Tick*period
	u.ev.Epoch, u.ev.Tick = u.h.Epoch, u.h.Tick
	u.emit(report.PhaseCutover, "")
	took := false
	wait := time.Duration(u.res.CutoverNs-mono.Now()) + FrameSilence
	err := poll(withTimeout(ctx, wait), func() (bool, error) {
		b := u.c.beat()
		took = b.Highest >= u.h.Epoch && b.Epoch == u.h.Epoch
		return took || b.Highest >= u.h.Fallback, nil
	})
	if err != nil || !took {
		// The candidate never drove: the owner kept (or took back) the
		// hardware.
		return retryable{errors.New("the candidate did not take over at the cut-over tick")}
	}
	u.cutAt = mono.Now()
	return nil
}

// probation watches the new owner; it returns why it is unhealthy, or ""
// for a commit.
func (u *update) probation(ctx context.Context) string {
	u.emit(report.PhaseProbation, "")
	s0, _ := u.c.statusOf(u.plan.Owner)
	b0, t0 := u.c.beat(), mono.Now()
	deadline := t0 + int64(u.plan.Probation)
	var why string
	err := poll(ctx, func() (bool, error) {
		if why = u.unhealthy(s0); why != "" {
			return true, nil
		}
		if mono.Now() < deadline {
			return false, nil
		}
		why = u.writeRate(b0, t0)
		if why == "" && u.plan.Revert {
			why = "revert requested"
		}
		return true, nil
	})
	if err != nil {
		return "probation interrupted: " + err.Error()
	}
	return why
}

// unhealthy checks the new owner once.
func (u *update) unhealthy(s0 handoff.Status) string {
	if b := u.c.beat(); b.Highest >= u.h.Fallback {
		u.res.TakenBack = true
		return "the new owner fell silent at the lease; the standby took back"
	}
	// The new owner's first frame may reach us after the lease showed it
	// driving: silence counts from the cut-over until then.
	f, ok := u.c.frame(u.plan.Candidate)
	last := u.cutAt
	if ok {
		last = max(last, f.seen)
	}
	switch {
	case mono.Now()-last > int64(FrameSilence) && !u.c.behind():
		return "the new owner stopped publishing frames"
	case !ok:
		return ""
	case math.Abs(f.health.RollDeg) > u.plan.MaxTiltDeg || math.Abs(f.health.PitchDeg) > u.plan.MaxTiltDeg:
		return fmt.Sprintf("attitude out of the envelope: roll %.1f°, pitch %.1f°", f.health.RollDeg, f.health.PitchDeg)
	}
	if s, ok := u.c.statusOf(u.plan.Owner); ok && s.Diverged-s0.Diverged > u.plan.MaxDiverged {
		return fmt.Sprintf("the standby found %d divergent ticks", s.Diverged-s0.Diverged)
	}
	return ""
}

// writeRate checks the motor-update rate the lease saw since b0 at t0.
func (u *update) writeRate(b0 lease.Beat, t0 int64) string {
	rate, ok := rateSince(b0, t0, u.c.beat())
	want := minWriteRate(u.c.periodNs(), u.ownerHz)
	if !ok || rate >= want {
		return ""
	}
	msg := fmt.Sprintf("the lease saw %.0f motor writes/s, want at least %.0f", rate, want)
	if u.ownerHz > 0 {
		msg += fmt.Sprintf(" (the old owner wrote %.0f/s from the candidate's start to the cut-over)", u.ownerHz)
	}
	return msg
}

// rateSince is the motor writes per second from b0, read at t0, to b,
// read now; not ok over less than RateWindow.
func rateSince(b0 lease.Beat, t0 int64, b lease.Beat) (rate float64, ok bool) {
	secs := float64(mono.Now()-t0) / 1e9
	if secs < RateWindow.Seconds() {
		return 0, false
	}
	return float64(b.Writes-b0.Writes) / secs, true
}

// minWriteRate is the write rate a new owner must reach: MinWriteRate of
// the loop's rate (period ns), or of the old owner's measured rate
// (writes/s; 0 = unknown) where that was lower.
func minWriteRate(period int64, ownerHz float64) float64 {
	if period <= 0 {
		return 0
	}
	hz := 1e9 / float64(period)
	if ownerHz > 0 {
		hz = min(hz, ownerHz)
	}
	return MinWriteRate * hz
}

// commit retires the standby and stops it.
func (u *update) commit(ctx context.Context) (Result, error) {
	c, plan := u.c, u.plan
	if err := c.request(ctx, plan.Owner, handoff.Control{Op: "retire"}); err != nil {
		if errors.Is(err, errRefused) {
			// It took back an instant before: it owns the hardware and the
			// candidate is fenced out. Revert, do not stop it.
			u.res.TakenBack = true
			return u.revert(ctx, "the standby took back before it was retired")
		}
		c.log.Warn("standby did not answer retire; stopping it", "err", err)
	}
	if err := c.rt.Stop(context.WithoutCancel(ctx), plan.Owner); err != nil {
		c.log.Warn("stopping the retired standby", "err", err)
	}
	u.res.Outcome, u.res.Owner, u.res.Epoch = report.OutcomeCommitted, plan.Candidate, u.h.Epoch
	u.res.ToCommitMs = msSince(u.cutAt)
	u.emit(report.PhaseCommit, "")
	return u.res, nil
}

// revert gives the hardware back to the standby after a cut-over, then
// stops the candidate. It never stops the candidate while the lease shows
// it driving: that would leave nobody flying.
func (u *update) revert(ctx context.Context, why string) (Result, error) {
	c, plan := u.c, u.plan
	u.emit(report.PhaseRevert, why)
	stopped, err := u.handBack(ctx)
	if err == nil && !stopped {
		if err := c.rt.Stop(context.WithoutCancel(ctx), plan.Candidate); err != nil {
			c.log.Warn("stopping the candidate", "err", err)
		}
	}
	u.res.Outcome, u.res.Owner, u.res.Reason = report.OutcomeReverted, plan.Owner, why
	u.res.Epoch = c.beat().Highest
	u.res.ToCommitMs = msSince(u.cutAt)
	u.ev.Epoch = u.res.Epoch
	if err != nil {
		if !stopped {
			u.res.Owner = plan.Candidate
		}
		u.emit(report.PhaseDone, "the old owner is not driving after the revert: "+err.Error())
		return u.res, errors.New("coordinator: revert did not complete: " + u.ev.Error)
	}
	u.emit(report.PhaseDone, why)
	return u.res, fmt.Errorf("coordinator: reverted to %s: %s", plan.Owner, why)
}

// handBackTries is how many hand-backs a revert asks for before it leaves
// the candidate flying.
const handBackTries = 3

// handBack returns once the lease shows the standby driving, and whether
// it stopped the candidate to get there. A hand-back
// (handOver, the candidate to the standby) goes out until one lands:
//   - the standby took back on its own (TakenBack): nothing to ask;
//   - the standby drives at the hand-back's epoch: done;
//   - the candidate drives at a newer one: the standby missed the hand-back
//     (a stalled loop) and the candidate took back at the hand-back's
//     fallback; the standby steps aside, so ask again above it;
//   - nobody took (the candidate never heard the request, or the standby
//     dropped it): while the standby still watches the candidate's cut-over
//     epoch, stopping the candidate makes it take back at the fallback;
//     otherwise ask again.
func (u *update) handBack(ctx context.Context) (stopped bool, err error) {
	c, plan := u.c, u.plan
	from, back := u.h.Epoch, u.h.Fallback
	drives := func(b lease.Beat) bool { return b.Highest == back && b.Epoch == back }
	for range handBackTries {
		if drives(c.beat()) {
			return false, nil
		}
		hb := handoff.Handover{Tick: c.tickIn(plan.Lead), To: plan.Owner, Epoch: back, Fallback: back + 1}
		if err := c.handOver(ctx, plan.Candidate, from, hb); err != nil {
			c.log.Warn("hand-back refused", "epoch", back, "err", err)
		}
		var b lease.Beat
		poll(withTimeout(ctx, 3*time.Second), func() (bool, error) {
			b = c.beat()
			return b.Highest >= back && b.Epoch >= back, nil
		})
		switch {
		case drives(b):
			return false, nil
		case b.Highest > back:
			from, back = b.Highest, b.Highest+1
		case from == u.h.Epoch:
			if err := c.rt.Stop(context.WithoutCancel(ctx), plan.Candidate); err != nil {
				return false, fmt.Errorf("the candidate did not hand back, and stopping it failed: %w", err)
			}
			return true, poll(withTimeout(ctx, 2*time.Second), func() (bool, error) { return drives(c.beat()), nil })
		}
	}
	return false, fmt.Errorf("the candidate still drives after %d hand-backs; it is left running", handBackTries)
}

// abort stops the candidate before cut-over; the owner is untouched.
func (u *update) abort(ctx context.Context, cause error) (Result, error) {
	if err := u.c.rt.Stop(context.WithoutCancel(ctx), u.plan.Candidate); err != nil {
		u.c.log.Warn("stopping the aborted candidate", "err", err)
	}
	var r retryable
	u.res.Outcome, u.res.Owner, u.res.Reason = report.OutcomeAborted, u.plan.Owner, cause.Error()
	u.res.Retryable = errors.As(cause, &r)
	u.res.Epoch = max(u.epoch, u.c.beat().Highest)
	u.emit(report.PhaseAbort, u.res.Reason)
	return u.res, errors.New("coordinator: aborted: " + u.res.Reason)
}

// baseline runs stop-start or start-then-stop: no state moves. The new
// instance starts owning epoch E+1; the lease admits it once the old owner
// stopped writing (lease.HolderTimeout after its last write), so
// start-then-stop stops the old owner as soon as the new one is up, as
// balena's hand-over does, and the new one takes the motors from there.
func (u *update) baseline(ctx context.Context) (Result, error) {
	c, plan, res := u.c, u.plan, u.res
	u.emit(report.PhasePrepare, "")
	next := u.epoch + 1
	t0 := mono.Now()
	if plan.Strategy == strategy.StopStart {
		if err := c.rt.Stop(ctx, plan.Owner); err != nil {
			return res, fmt.Errorf("coordinator: stop old owner: %w", err)
		}
	}
	c.forget(plan.Candidate) // as in Run: a reused name's old reports are not the new one's
	if err := c.rt.Start(ctx, Spec{Instance: plan.Candidate, Image: plan.Image, Mode: ModeResume, Epoch: next}); err != nil {
		return res, fmt.Errorf("coordinator: start new instance: %w", err)
	}
	res.StartMs = msSince(t0)
	if plan.Strategy == strategy.StartThenStop {
		if err := u.stopWhenUp(ctx); err != nil {
			return res, err
		}
	}
	var nf frameInfo
	err := poll(withTimeout(ctx, 10*time.Second), func() (bool, error) {
		var ok bool
		nf, ok = c.frame(plan.Candidate)
		return ok && nf.epoch == next, nil
	})
	if err != nil {
		return res, fmt.Errorf("coordinator: the new instance never drove the hardware: %w", err)
	}
	res.CutoverTick, res.CutoverNs = nf.tick, nf.tickNs
	u.ev.Epoch, u.ev.Tick = next, nf.tick
	u.emit(report.PhaseCutover, "")
	res.Outcome, res.Owner, res.Epoch = report.OutcomeCommitted, plan.Candidate, next
	res.ToCommitMs = msSince(t0)
	u.emit(report.PhaseCommit, "")
	return res, nil
}

// stopWhenUp waits until the new instance reports (it runs and has joined
// the hand-over), then stops the old owner.
func (u *update) stopWhenUp(ctx context.Context) error {
	err := poll(withTimeout(ctx, 10*time.Second), func() (bool, error) {
		_, ok := u.c.statusOf(u.plan.Candidate)
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("coordinator: the new instance never reported: %w", err)
	}
	if err := u.c.rt.Stop(ctx, u.plan.Owner); err != nil {
		return fmt.Errorf("coordinator: stop old owner: %w", err)
	}
	return nil
}

func msSince(t int64) float64 { return float64(mono.Now()-t) / 1e6 }

// withTimeout is context.WithTimeout for poll loops whose cancel is
// released when the parent ends.
func withTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(ctx, cancel)
	return ctx
}
