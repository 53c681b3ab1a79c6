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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/hw/mono"
)

// Model is the app's control law as the participant needs it for shadowing.
type Model interface {
	// Replay returns the outputs the app computes from state (a frame's
	// State) on sample (the next frame's Sample), without touching the
	// live controller. It is called from the participant's goroutine.
	Replay(state, sample json.RawMessage) ([]float64, error)
}

// ParticipantConfig configures a participant. The zero value of each
// optional field means the default noted beside it.
type ParticipantConfig struct {
	App      string // required: subject namespace
	Instance string // required: this process's identity (unique)
	Version  string // informational
	Schema   string // required: schema id of the state this app publishes
	Accepts  []string
	// Role is the starting role: RoleOwner (cold start) or RoleCandidate.
	Role   Role
	Epoch  uint64        // the owner's epoch; required for RoleOwner
	Period time.Duration // tick period; required

	SyncTicks int           // matching ticks in a row to be synced; 0 = 100
	Tolerance float64       // largest output difference that matches; 0 = 0.01
	MaxLag    time.Duration // frames older than this are stale; 0 = 8 ticks
	// TakebackTicks is how many ticks without an owner frame make a standby
	// take back; 0 = 16 (40 ms at 400 Hz: the motor controller holds the
	// last outputs meanwhile, and a busy machine can delay a frame by
	// 10-20 ms without anything being wrong).
	TakebackTicks int
	// FrameWait bounds how long Tick waits for frame T-1 when a hand-over
	// to this instance at T is pending; 0 = two ticks. Writing tick T a
	// little late stretches one motor-update gap; giving up aborts the
	// hand-over and costs a take-back (TakebackTicks) instead.
	FrameWait time.Duration
	Log       *slog.Logger // nil = discard
}

func (c ParticipantConfig) withDefaults() (ParticipantConfig, error) {
	if err := CheckApp(c.App); err != nil {
		return c, err
	}
	if c.Instance == "" || c.Schema == "" || c.Period <= 0 {
		return c, errors.New("handoff: participant needs an instance, a schema and a tick period")
	}
	if c.Role != RoleOwner && c.Role != RoleCandidate {
		return c, fmt.Errorf("handoff: participant cannot start as %q: use owner or candidate", c.Role)
	}
	if c.Role == RoleOwner && c.Epoch == 0 {
		return c, errors.New("handoff: an owner needs an epoch")
	}
	if c.Accepts == nil {
		c.Accepts = []string{c.Schema}
	}
	if c.SyncTicks == 0 {
		c.SyncTicks = 100
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.01
	}
	if c.MaxLag == 0 {
		c.MaxLag = 8 * c.Period
	}
	if c.TakebackTicks == 0 {
		c.TakebackTicks = 16
	}
	if c.FrameWait == 0 {
		c.FrameWait = 2 * c.Period
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Decision tells the control loop what to do this tick.
type Decision struct {
	// Write: drive the actuators this tick, with Epoch.
	Write bool
	Epoch uint64
	// Hydrate, if set, is the state to load before stepping: the owner's
	// state after the previous tick.
	Hydrate json.RawMessage
	// Retire: exit now without touching the actuators.
	Retire bool
}

// Participant is the hand-over side a control loop embeds. Tick and
// Publish are called from the control loop; everything else runs on NATS
// goroutines.
type Participant struct {
	nc    *nats.Conn
	cfg   ParticipantConfig
	sub   Subjects
	model Model
	log   *slog.Logger

	curTick atomic.Int64
	frameCh chan struct{} // a frame arrived
	frameMu sync.Mutex    // serialises onFrame (the live subscription and the late-join fetch)
	kick    chan struct{} // publish status now
	subs    []*nats.Subscription
	done    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	role     Role
	epoch    uint64    // epoch we write with (owner)
	fallback uint64    // standby: epoch to take back with; 0 = none
	pending  *Handover // owner: accepted hand-over
	seq      uint64
	highest  uint64 // highest epoch seen anywhere
	latest   *Frame // newest frame from another instance
	lastTick int64  // newest tick of any owner frame, ours included
	streak   int
	lagNs    int64
	lastDown int64 // the latest tick at which the NATS connection was down
	counts   struct{ diverged, gaps, malformed, incompatible, staleFrames uint64 }
	taken    bool
}

// NewParticipant joins the hand-over for app on nc. A candidate hydrates
// from the newest frame kept in the stream, then follows live frames.
func NewParticipant(ctx context.Context, nc *nats.Conn, model Model, cfg ParticipantConfig) (*Participant, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Participant{
		nc: nc, cfg: cfg, sub: SubjectsFor(cfg.App), model: model, log: cfg.Log,
		frameCh: make(chan struct{}, 1), kick: make(chan struct{}, 1), done: make(chan struct{}),
		role: cfg.Role, epoch: cfg.Epoch, highest: cfg.Epoch,
	}
	if cfg.Role == RoleOwner {
		if err := EnsureStream(ctx, nc, cfg.App); err != nil {
			return nil, err
		}
	}
	fs, err := nc.Subscribe(p.sub.Frames(), func(m *nats.Msg) { p.onFrame(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("handoff: subscribe frames: %w", err)
	}
	fs.SetPendingLimits(4096, 64<<20)
	cs, err := nc.Subscribe(p.sub.Control(cfg.Instance), p.onControl)
	if err != nil {
		fs.Unsubscribe()
		return nil, fmt.Errorf("handoff: subscribe control: %w", err)
	}
	p.subs = []*nats.Subscription{fs, cs}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		p.Close()
		return nil, fmt.Errorf("handoff: nats flush: %w", err)
	}
	if cfg.Role == RoleCandidate {
		// Late join: start from the newest kept frame, then follow live.
		data, err := LastFrame(ctx, nc, cfg.App)
		if err != nil {
			p.log.Warn("no frame history; waiting for live frames", "err", err)
		} else if data != nil {
			p.onFrame(data)
		}
	}
	p.wg.Add(1)
	go p.statusLoop()
	return p, nil
}

// Close leaves the hand-over.
func (p *Participant) Close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	for _, s := range p.subs {
		s.Unsubscribe()
	}
	p.wg.Wait()
	p.publishStatus()
}

// Role returns the current role.
func (p *Participant) Role() Role {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.role
}

// Tick decides the control loop's part in tick. Call it at the start of
// every tick, before reading sensors.
func (p *Participant) Tick(tick int64) Decision {
	p.curTick.Store(tick)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.role {
	case RoleOwner:
		if h := p.pending; h != nil && tick >= h.Tick {
			p.setRole(RoleStandby, "handed over", "tick", tick, "to", h.To, "epoch", h.Epoch)
			p.fallback, p.pending, p.epoch = h.Fallback, nil, 0
			return Decision{}
		}
		return Decision{Write: true, Epoch: p.epoch}
	case RoleRetired:
		return Decision{Retire: true}
	}
	// Candidate or standby.
	if f := p.latest; f != nil && p.handoverTo(f, tick) && f.Tick < tick-1 {
		p.waitFrame(tick)
	}
	var d Decision
	f := p.latest
	if f != nil && f.Tick == tick-1 {
		d.Hydrate = f.State
		if p.handoverTo(f, tick) {
			h := f.Handover
			p.epoch, p.fallback, p.seq = h.Epoch, 0, 0
			p.highest = max(p.highest, h.Epoch)
			p.setRole(RoleOwner, "took over", "tick", tick, "epoch", h.Epoch, "from", f.Instance)
			return Decision{Write: true, Epoch: h.Epoch, Hydrate: f.State}
		}
	}
	if !p.nc.IsConnected() {
		// Silence over a broken bus says nothing about the owner (the
		// on-board NATS may be restarting with the agent): no take-back
		// while it is down, nor for a second after it is back, while the
		// owner's client reconnects too (clients retry at their own pace).
		p.lastDown = tick
	}
	busQuiet := p.lastDown == 0 || tick-p.lastDown > int64(p.cfg.TakebackTicks)+int64(time.Second/p.cfg.Period)
	if p.role == RoleStandby && p.fallback > 0 && tick-p.lastTick > int64(p.cfg.TakebackTicks) && busQuiet {
		// The owner fell silent: take back at the fallback epoch, which
		// fences it out. Our own state has been stepping all along.
		p.epoch, p.fallback, p.seq, p.taken = p.fallback, 0, 0, true
		p.highest = max(p.highest, p.epoch)
		p.setRole(RoleOwner, "owner silent: took back", "tick", tick, "epoch", p.epoch, "last_owner_tick", p.lastTick)
		return Decision{Write: true, Epoch: p.epoch}
	}
	return d
}

func (p *Participant) handoverTo(f *Frame, tick int64) bool {
	h := f.Handover
	return h != nil && h.To == p.cfg.Instance && h.Tick == tick && h.Epoch > p.highest
}

// waitFrame waits (lock held on entry and exit) up to FrameWait for the
// frame of tick-1.
func (p *Participant) waitFrame(tick int64) {
	deadline := time.NewTimer(p.cfg.FrameWait)
	defer deadline.Stop()
	for p.latest == nil || p.latest.Tick < tick-1 {
		p.mu.Unlock()
		select {
		case <-p.frameCh:
			p.mu.Lock()
		case <-deadline.C:
			p.mu.Lock()
			p.log.Warn("frame for the hand-over tick did not arrive in time; not taking over", "tick", tick)
			return
		}
	}
}

// setRole changes role (lock held) and reports at once.
func (p *Participant) setRole(r Role, msg string, args ...any) {
	p.role = r
	p.streak = 0
	p.log.Info("handoff: "+msg, append([]any{"role", string(r)}, args...)...)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Fenced tells the participant that a write was refused as stale: someone
// newer holds the hardware. It becomes a standby that does not take back.
func (p *Participant) Fenced() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.role == RoleOwner {
		p.epoch, p.fallback, p.pending = 0, 0, nil
		p.setRole(RoleStandby, "fenced out by a newer epoch")
	}
}

// Publish sends this tick's frame if this instance is the owner. state and
// sample are the app's JSON; out the outputs written.
func (p *Participant) Publish(tick int64, state, sample json.RawMessage, out []float64, h Health) error {
	p.mu.Lock()
	if p.role != RoleOwner {
		p.mu.Unlock()
		return nil
	}
	p.seq++
	f := Frame{
		Schema: p.cfg.Schema, Instance: p.cfg.Instance, Version: p.cfg.Version, Epoch: p.epoch,
		Seq: p.seq, Tick: tick, TickNs: tick * int64(p.cfg.Period), Handover: p.pending,
		State: state, Sample: sample, Out: out, Health: h,
	}
	p.lastTick = max(p.lastTick, tick)
	p.mu.Unlock()
	data, err := json.Marshal(&f)
	if err != nil {
		return fmt.Errorf("handoff: encode frame: %w", err)
	}
	return p.nc.Publish(p.sub.Frames(), data)
}

// onFrame handles one frame (NATS goroutine; calls are serialised).
func (p *Participant) onFrame(data []byte) {
	f, err := DecodeFrame(data)
	if err != nil {
		p.mu.Lock()
		p.counts.malformed++
		p.mu.Unlock()
		return
	}
	if f.Instance == p.cfg.Instance {
		return
	}
	p.frameMu.Lock()
	defer p.frameMu.Unlock()
	now := mono.Now()
	p.mu.Lock()
	if l := p.latest; l != nil && l.Instance == f.Instance && f.Tick <= l.Tick {
		// Older than what we hold (the late-join fetch raced a live frame).
		p.mu.Unlock()
		return
	}
	if !slices.Contains(p.cfg.Accepts, f.Schema) {
		p.counts.incompatible++
		p.mu.Unlock()
		return
	}
	if f.Epoch < p.highest {
		// A fenced instance that has not noticed yet.
		p.counts.staleFrames++
		p.mu.Unlock()
		return
	}
	p.highest = f.Epoch
	prev := p.latest
	role := p.role
	p.mu.Unlock()

	lag := now - f.TickNs
	same := prev != nil && prev.Instance == f.Instance
	consecutive := same && f.Seq == prev.Seq+1 && f.Tick == prev.Tick+1
	match := false
	if consecutive && role != RoleOwner && lag <= int64(p.cfg.MaxLag) {
		out, err := p.model.Replay(prev.State, f.Sample)
		match = err == nil && maxDiff(out, f.Out) <= p.cfg.Tolerance
		if !match {
			p.mu.Lock()
			p.counts.diverged++
			p.mu.Unlock()
		}
	}

	p.mu.Lock()
	if same && f.Seq != prev.Seq+1 {
		p.counts.gaps++
	}
	if match {
		p.streak++
	} else {
		p.streak = 0
	}
	p.latest = f
	p.lastTick = max(p.lastTick, f.Tick)
	p.lagNs = lag
	p.mu.Unlock()
	select {
	case p.frameCh <- struct{}{}:
	default:
	}
}

func maxDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	if math.IsNaN(d) {
		return math.Inf(1)
	}
	return d
}

// onControl answers a coordinator request.
func (p *Participant) onControl(m *nats.Msg) {
	reply := func(err error) {
		r := Reply{OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		b, _ := json.Marshal(r)
		if m.Reply != "" {
			m.Respond(b)
		}
	}
	var c Control
	if err := json.Unmarshal(m.Data, &c); err != nil {
		p.mu.Lock()
		p.counts.malformed++
		p.mu.Unlock()
		reply(fmt.Errorf("%w: control: %v", ErrMalformed, err))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch c.Op {
	case "handover":
		h := c.Handover
		now := p.curTick.Load()
		switch {
		case h == nil || h.To == "" || h.To == p.cfg.Instance:
			p.counts.malformed++
			reply(fmt.Errorf("%w: handover needs another instance to hand to", ErrMalformed))
		case p.role != RoleOwner:
			reply(fmt.Errorf("handoff: %s is %s, not the owner", p.cfg.Instance, p.role))
		case p.pending != nil:
			reply(fmt.Errorf("handoff: a hand-over at tick %d is already pending", p.pending.Tick))
		case h.Tick <= now+1:
			reply(fmt.Errorf("handoff: hand-over tick %d is not ahead of the current tick %d", h.Tick, now))
		case h.Epoch <= p.epoch || h.Fallback <= h.Epoch:
			reply(fmt.Errorf("handoff: epochs must grow: owner %d, new %d, fallback %d", p.epoch, h.Epoch, h.Fallback))
		default:
			hc := *h
			p.pending = &hc
			p.log.Info("handoff: hand-over accepted", "tick", h.Tick, "to", h.To, "epoch", h.Epoch, "current_tick", now)
			reply(nil)
		}
	case "retire":
		if p.role == RoleOwner {
			reply(errors.New("handoff: the owner cannot retire; hand over first"))
			return
		}
		p.setRole(RoleRetired, "retired")
		reply(nil)
	default:
		p.counts.malformed++
		reply(fmt.Errorf("%w: unknown op %q", ErrMalformed, c.Op))
	}
}

// Status returns the participant's current status.
func (p *Participant) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := mono.Now()
	s := Status{
		Instance: p.cfg.Instance, Version: p.cfg.Version, Role: p.role, Epoch: p.epoch,
		Accepts: p.cfg.Accepts, Streak: p.streak, LagMs: float64(p.lagNs) / 1e6,
		Diverged: p.counts.diverged, Gaps: p.counts.gaps, Malformed: p.counts.malformed,
		Incompatible: p.counts.incompatible, Stale: p.counts.staleFrames, TakenBack: p.taken, T: now,
		LastTick: p.lastTick,
	}
	if p.latest != nil {
		fresh := now-p.latest.TickNs <= int64(p.cfg.MaxLag)
		s.Synced = p.role != RoleOwner && p.streak >= p.cfg.SyncTicks && fresh && p.lagNs <= int64(p.cfg.MaxLag)
	}
	return s
}

func (p *Participant) publishStatus() {
	b, err := json.Marshal(p.Status())
	if err == nil {
		p.nc.Publish(p.sub.Status(p.cfg.Instance), b)
	}
}

func (p *Participant) statusLoop() {
	defer p.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		case <-p.kick:
		}
		p.publishStatus()
	}
}
