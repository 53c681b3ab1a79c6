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

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// Model is the app's control law as the participant needs it for shadowing.
type Model interface {
	// Replay returns the outputs the app computes from state (a frame's
	// State) on sample (the next frame's Sample), without touching the
	// live controller. It is called from the participant's goroutine.
	Replay(state, sample json.RawMessage) ([]float64, error)
}

// Lease is the hardware's write lease as a participant uses it; the app's
// bus (lease.Bus) is one.
type Lease interface {
	// Beat reads the lease's heartbeat, where the writes happen.
	Beat() (lease.Beat, error)
	// Release records that this instance stopped writing with epoch.
	Release(epoch uint64) error
}

// Defaults of ParticipantConfig's zero durations. Each is a time, not a
// count of ticks, so that it protects the same thing at any loop rate.
const (
	// DefaultSyncFor: the candidate's replays must have matched the
	// owner's outputs over this much of the owner's flight, with no
	// divergence and no gap, to be synced: 250 ms holds every phase of the
	// control law (estimator, integrators, mission) long enough to show a
	// mismatch, at 62 frames at 250 Hz and 500 at 2000 Hz.
	DefaultSyncFor = 250 * time.Millisecond
	// DefaultMaxLag: a candidate is synced only while the owner's newest
	// frame reached it at most this late (and no older). It follows live
	// well inside the cut-over lead (DefaultLead), so it sees the owner's
	// commitment in time; on a loaded machine frames arrive 5-30 ms late
	// with nothing wrong. Older frames are not used to hydrate: the loop
	// catches up at most this much of its own samples.
	DefaultMaxLag = 50 * time.Millisecond
	// DefaultFrameWait: at the cut-over tick, once the lease shows the
	// owner released, how long the new owner waits for the owner's last
	// frame before driving from its own caught-up state. Loopback NATS
	// delivers a frame in 0.1-0.3 ms; 1 ms covers a busy moment and
	// stretches that one motor gap by at most that.
	DefaultFrameWait = time.Millisecond
)

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
	// Lease is the hardware's lease (required): the take-over and the
	// take-back are decided on what it says, never on messages alone.
	Lease Lease

	SyncFor   time.Duration // 0 = DefaultSyncFor
	Tolerance float64       // largest output difference that matches; 0 = 0.01
	MaxLag    time.Duration // 0 = DefaultMaxLag
	FrameWait time.Duration // 0 = DefaultFrameWait
	// HolderTimeout is how long the owner's writes may stop before it is
	// presumed gone; 0 = lease.HolderTimeout.
	HolderTimeout time.Duration
	Clock         func() int64 // CLOCK_MONOTONIC ns; nil = mono.Now
	Log           *slog.Logger // nil = discard
}

func (c ParticipantConfig) withDefaults() (ParticipantConfig, error) {
	if err := CheckApp(c.App); err != nil {
		return c, err
	}
	if c.Instance == "" || c.Schema == "" || c.Period <= 0 || c.Lease == nil {
		return c, errors.New("handoff: participant needs an instance, a schema, a tick period and the hardware's lease")
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
	c.SyncFor = cmpOr(c.SyncFor, DefaultSyncFor)
	c.MaxLag = cmpOr(c.MaxLag, DefaultMaxLag)
	c.FrameWait = cmpOr(c.FrameWait, DefaultFrameWait)
	c.HolderTimeout = cmpOr(c.HolderTimeout, lease.HolderTimeout)
	if c.Tolerance == 0 {
		c.Tolerance = 0.01
	}
	if c.Clock == nil {
		c.Clock = mono.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Decision tells the control loop what to do this tick.
type Decision struct {
	// Write: drive the actuators this tick, with Epoch.
	Write bool
	Epoch uint64
	// Hydrate, if set, is the owner's state after tick HydrateTick (before
	// this one). Load it, then step the control law on the loop's own
	// samples of the ticks after HydrateTick (Recent keeps them), then
	// step this tick as usual. Usually HydrateTick is the previous tick
	// and there is nothing to catch up.
	Hydrate     json.RawMessage
	HydrateTick int64
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
	lease Lease
	now   func() int64

	curTick atomic.Int64
	frameCh chan struct{}    // a frame arrived
	frameMu sync.Mutex       // serialises onFrame (the live subscription and the late-join fetch)
	kick    chan struct{}    // publish status now
	notes   chan slog.Record // logs of events, for statusLoop to write: see note
	lost    atomic.Uint64    // notes dropped because notes was full
	out     chan []byte      // encoded frames for sendLoop
	free    chan []byte      // out's buffers, back from sendLoop for the next frame
	dropped atomic.Uint64    // frames dropped because out was full
	subs    []*nats.Subscription
	done    chan struct{}
	wg      sync.WaitGroup

	// The control loop's own (Tick, Publish, Held and Fenced run on it):
	// the frame it encodes each tick, the buffer it encodes it in, the
	// frame's sequence number, how to step back from a take-over or
	// take-back the lease may refuse, and the epoch it last released at
	// the lease.
	frame    Frame
	enc      JSONBuffer
	seq      uint64
	undo     *undo
	released uint64

	// What an owner's tick needs, mirrored from the state under mu (see
	// mirror) for the control loop to read without the lock: the epoch it
	// writes with while it owns the hardware (0 otherwise), the hand-over
	// it accepted (nil while none; never changed once stored), and the
	// role. The NATS callbacks and the status goroutine take mu on
	// ordinary threads; a real-time loop waiting for one of them waits for
	// whatever the machine runs before it (47 ms once beside the CPU hog).
	driveEpoch atomic.Uint64
	handover   atomic.Pointer[Handover]
	roleNow    atomic.Value // Role
	lastTick   atomic.Int64 // newest tick of any owner frame, ours included

	mu       sync.Mutex
	role     Role
	epoch    uint64    // epoch we write with (owner)
	pending  *Handover // owner: accepted hand-over
	watch    uint64    // standby: the epoch it handed over to, whose holder it watches
	fallback uint64    // standby: epoch to take back with; 0 = none
	commit   *commitment
	highest  uint64 // highest epoch seen anywhere
	latest   *Frame // newest frame from another instance
	blind    blind  // candidate, standby: when its loop did not run
	hydrated int64  // tick of the newest frame handed to the loop
	streak   int    // replayed frames in a row that matched
	since    int64  // tick time of the first frame of the streak
	lagNs    int64
	counts   struct{ diverged, gaps, malformed, incompatible, staleFrames uint64 }
	taken    bool
}

// undo is what an instance was before it took the hardware, until its
// first write at the new epoch is accepted: the lease refuses that write
// (ErrHeld) when the holder it took from is still alive.
type undo struct {
	role                     Role
	watch, fallback, highest uint64
	commit                   *commitment
	taken                    bool
}

// commitment is an owner's stamped promise to hand over to this instance.
type commitment struct {
	Handover
	from uint64 // the epoch handing over
}

// NewParticipant joins the hand-over for app on nc. A candidate hydrates
// from the newest frame kept in the stream, then follows live frames.
func NewParticipant(ctx context.Context, nc *nats.Conn, model Model, cfg ParticipantConfig) (*Participant, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Participant{
		nc: nc, cfg: cfg, sub: SubjectsFor(cfg.App), model: model, log: cfg.Log, lease: cfg.Lease, now: cfg.Clock,
		frameCh: make(chan struct{}, 1), kick: make(chan struct{}, 1), done: make(chan struct{}),
		notes: make(chan slog.Record, noteBacklog),
		out:   make(chan []byte, outboxFrames), free: make(chan []byte, outboxFrames+1),
		role: cfg.Role, epoch: cfg.Epoch, highest: cfg.Epoch,
	}
	p.mirror()
	if cfg.Role == RoleOwner {
		if err := EnsureStream(ctx, nc, cfg.App); err != nil {
			return nil, err
		}
	}
	if err := p.subscribe(); err != nil {
		return nil, err
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
	p.wg.Add(2)
	go p.statusLoop()
	go p.sendLoop()
	return p, nil
}

func (p *Participant) subscribe() error {
	fs, err := p.nc.Subscribe(p.sub.Frames(), func(m *nats.Msg) { p.onFrame(m.Data) })
	if err != nil {
		return fmt.Errorf("handoff: subscribe frames: %w", err)
	}
	fs.SetPendingLimits(4096, 64<<20)
	cs, err := p.nc.Subscribe(p.sub.Control(p.cfg.Instance), p.onControl)
	if err != nil {
		fs.Unsubscribe()
		return fmt.Errorf("handoff: subscribe control: %w", err)
	}
	p.subs = []*nats.Subscription{fs, cs}
	if err := p.nc.FlushTimeout(5 * time.Second); err != nil {
		p.Close()
		return fmt.Errorf("handoff: nats flush: %w", err)
	}
	return nil
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
	p.writeNotes()
	p.publishStatus()
}

// Role returns the current role.
func (p *Participant) Role() Role { return p.roleNow.Load().(Role) }

// mirror copies what an owner's tick needs out of the state under mu
// (lock held): every change of role, epoch or pending hand-over calls it
// before the lock is released.
func (p *Participant) mirror() {
	epoch := uint64(0)
	if p.role == RoleOwner {
		epoch = p.epoch
	}
	p.driveEpoch.Store(epoch)
	p.handover.Store(p.pending)
	p.roleNow.Store(p.role)
}

// CatchUpTicks is how many of its own past samples the loop must keep for
// a Hydrate's catch-up (Recent's size).
func (p *Participant) CatchUpTicks() int {
	return int(p.cfg.MaxLag/p.cfg.Period) + 2
}

// Tick decides the control loop's part in tick. Call it at the start of
// every tick, before reading sensors. An instance that may take the
// hardware this tick reads the lease (and may wait on it, at most half a
// tick) before it answers.
func (p *Participant) Tick(tick int64) Decision {
	p.curTick.Store(tick)
	// An owner with no hand-over due drives without the lock: only its own
	// loop changes its role (Fenced, Held, the hand-over's tick), and a
	// hand-over is accepted only for a tick at least two ahead.
	if e := p.driveEpoch.Load(); e != 0 {
		if h := p.handover.Load(); h == nil || tick < h.Tick {
			return Decision{Write: true, Epoch: e}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.mirror()
	switch p.role {
	case RoleOwner:
		return p.ownerTick(tick)
	case RoleRetired:
		return Decision{Retire: true}
	}
	return p.shadowTick(tick)
}

// ownerTick: drive, unless an accepted hand-over starts at this tick.
func (p *Participant) ownerTick(tick int64) Decision {
	h := p.pending
	if h == nil || tick < h.Tick {
		return Decision{Write: true, Epoch: p.epoch}
	}
	p.release(p.epoch) // normally done right after the last write already
	p.setRole(RoleStandby, "handed over", "tick", tick, "to", h.To, "epoch", h.Epoch)
	p.watch, p.fallback, p.pending, p.epoch = h.Epoch, h.Fallback, nil, 0
	return Decision{}
}

// release tells the lease this instance stopped writing with epoch (the
// control loop's).
func (p *Participant) release(epoch uint64) {
	if epoch == 0 || p.released >= epoch {
		return
	}
	if err := p.lease.Release(epoch); err != nil {
		p.note(slog.LevelWarn, "handoff: cannot release the lease; the new owner will wait for the holder timeout", "epoch", epoch, "err", err)
		return
	}
	p.released = epoch
}

// shadowTick is a candidate's or standby's tick: take over, take back, or
// follow the owner.
func (p *Participant) shadowTick(tick int64) Decision {
	p.blind.tick(p.now(), int64(p.cfg.Period))
	v := p.view(tick)
	for {
		switch decide(v) {
		case readLease:
			b, err := p.readLease()
			if err != nil {
				return p.follow(tick) // no lease, no take-over: the owner flies on
			}
			v.beat, v.haveBeat = b, true
			continue
		case waitRelease:
			if p.now() > tick*int64(p.cfg.Period)+int64(p.cfg.Period)/2 {
				return p.follow(tick) // try again next tick
			}
			p.sleepUnlocked(time.Duration(p.cfg.Period) / 16)
			v = p.view(tick)
			continue
		case dropCommit:
			p.note(slog.LevelWarn, "handoff: hand-over void: another instance holds the hardware", "tick", tick, "highest", v.beat.Highest)
			p.commit = nil
			return p.follow(tick)
		case takeOver:
			return p.takeOver(tick, v.beat)
		case takeBack:
			return p.takeBack(tick, v.beat)
		}
		return p.follow(tick)
	}
}

// readLease reads the lease's heartbeat without holding the lock.
func (p *Participant) readLease() (lease.Beat, error) {
	p.mu.Unlock()
	defer p.mu.Lock()
	b, err := p.lease.Beat()
	if err != nil {
		p.note(slog.LevelWarn, "handoff: cannot read the lease", "err", err)
	}
	return b, err
}

// sleepUnlocked sleeps the calling thread in the kernel, not on a Go
// timer: a real-time thread woken by the runtime waits for an ordinary one
// to run the timer and hand it a processor.
func (p *Participant) sleepUnlocked(d time.Duration) {
	p.mu.Unlock()
	defer p.mu.Lock()
	mono.SleepUntil(mono.Now() + int64(d))
}

// view gathers what decide needs (lock held); the lease is read on demand.
func (p *Participant) view(tick int64) view {
	v := view{tick: tick, now: p.now(), period: int64(p.cfg.Period), holder: int64(p.cfg.HolderTimeout),
		watch: p.watch, fallback: p.fallback, blind: p.blind}
	if c := p.commit; c != nil {
		v.commitTick, v.from = c.Tick, c.from
	}
	if f := p.latest; f != nil && f.Epoch >= p.watch {
		v.ownerSeen = f.TickNs
	}
	return v
}

// follow is a tick without driving: hydrate from the newest owner frame
// not yet handed to the loop, if it is recent enough to catch up from.
func (p *Participant) follow(tick int64) Decision {
	f := p.latest
	if f == nil || f.Tick <= p.hydrated || f.Tick >= tick || p.now()-f.TickNs > int64(p.cfg.MaxLag) {
		return Decision{}
	}
	p.hydrated = f.Tick
	return Decision{Hydrate: f.State, HydrateTick: f.Tick}
}

// takeOver makes this instance the owner at the committed epoch: the
// owner before released the lease (or fell silent for the holder timeout).
// It waits, briefly, for the owner's last frame, and keeps half a tick
// after the owner's last write so that no tick has two writers.
func (p *Participant) takeOver(tick int64, b lease.Beat) Decision {
	c := p.commit
	if f := p.latest; f == nil || f.Tick < tick-1 {
		p.waitFrame(tick)
	}
	p.keepHalfTick(b)
	d := p.follow(tick)
	d.Write, d.Epoch = true, c.Epoch
	p.undo = &undo{role: p.role, watch: p.watch, fallback: p.fallback, highest: p.highest, commit: c, taken: p.taken}
	p.epoch, p.fallback, p.watch, p.seq, p.commit = c.Epoch, 0, 0, 0, nil
	p.highest = max(p.highest, c.Epoch)
	p.setRole(RoleOwner, "took over", "tick", tick, "epoch", c.Epoch, "planned_tick", c.Tick,
		"from_state_tick", d.HydrateTick, "owner_released", b.Released >= c.from)
	return d
}

// takeBack: the owner fell silent at the lease for the holder timeout; take
// the hardware back at the fallback epoch, which fences it out. Our own
// state has been stepping (and catching up on its frames) all along.
func (p *Participant) takeBack(tick int64, b lease.Beat) Decision {
	d := p.follow(tick)
	d.Write, d.Epoch = true, p.fallback
	p.undo = &undo{role: p.role, watch: p.watch, fallback: p.fallback, highest: p.highest, commit: p.commit, taken: p.taken}
	p.epoch, p.fallback, p.watch, p.seq, p.taken, p.commit = p.fallback, 0, 0, 0, true, nil
	p.highest = max(p.highest, p.epoch)
	p.setRole(RoleOwner, "owner silent at the lease: took back", "tick", tick, "epoch", p.epoch,
		"silent_ms", float64(p.now()-b.T)/1e6, "last_owner_tick", p.lastTick.Load())
	return d
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
			return
		}
	}
}

// keepHalfTick waits until half a tick has passed since the lease's last
// accepted write, so that a late write of the owner's last tick and our
// first write are never two writers in one tick.
func (p *Participant) keepHalfTick(b lease.Beat) {
	if b.T == 0 {
		return
	}
	if wait := b.T + int64(p.cfg.Period)/2 - p.now(); wait > 0 {
		p.sleepUnlocked(time.Duration(wait))
	}
}

// setRole changes role (lock held) and reports at once.
func (p *Participant) setRole(r Role, msg string, args ...any) {
	p.role = r
	p.streak = 0
	p.blind.stop()
	p.note(slog.LevelInfo, "handoff: "+msg, append([]any{"role", string(r)}, args...)...)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// noteBacklog is how many event logs may wait for statusLoop; events come
// a few per hand-over.
const noteBacklog = 64

// note logs an event without writing it here: the control loop (a
// real-time thread) and the NATS callbacks call it with p.mu held, and a
// log is a write to stdout, which can block, under a lock the next tick
// needs. The record keeps the event's time; statusLoop writes it within
// 50 ms, and Close writes what is left. A full backlog drops the record
// and counts it.
func (p *Participant) note(level slog.Level, msg string, args ...any) {
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.Add(args...)
	select {
	case p.notes <- r:
	default:
		p.lost.Add(1)
	}
}

// writeNotes writes the event logs note queued (statusLoop's goroutine,
// or Close's once it has stopped).
func (p *Participant) writeNotes() {
	ctx, h := context.Background(), p.log.Handler()
	for {
		select {
		case r := <-p.notes:
			if h.Enabled(ctx, r.Level) {
				h.Handle(ctx, r)
			}
		default:
			if n := p.lost.Swap(0); n > 0 {
				p.log.Warn("handoff: event logs dropped: the log writer fell behind", "dropped", n)
			}
			return
		}
	}
}

// Fenced tells the participant that a write was refused as stale: someone
// newer holds the hardware. An owner that had accepted a hand-over was
// taken over from (the new owner wrote a little before our last tick): it
// becomes the standby that hand-over made it. Otherwise it becomes a
// standby that does not take back.
func (p *Participant) Fenced() {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.mirror()
	if p.role != RoleOwner {
		return
	}
	if h := p.pending; h != nil {
		p.watch, p.fallback = h.Epoch, h.Fallback
		p.setRole(RoleStandby, "fenced by the instance it was handing over to", "to", h.To, "epoch", h.Epoch)
	} else {
		p.watch, p.fallback = 0, 0
		p.setRole(RoleStandby, "fenced out by a newer epoch")
	}
	p.epoch, p.pending = 0, nil
}

// Held tells the participant that its write was refused because the
// holder it meant to take the hardware from is alive (lease.ErrHeld): its
// view of the holder was late. An instance that had just taken over or
// taken back steps back to what it was, and decides again next tick; an
// owner from the start (a baseline's resume) keeps trying.
func (p *Participant) Held() {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.mirror()
	u := p.undo
	if p.role != RoleOwner || u == nil {
		return
	}
	p.setRole(u.role, "the lease refused the take: its holder is alive", "epoch_tried", p.epoch)
	p.undo, p.epoch, p.taken = nil, 0, u.taken
	p.watch, p.fallback, p.highest, p.commit = u.watch, u.fallback, u.highest, u.commit
}

// Publish sends this tick's frame if this instance is the owner. state and
// sample are the app's JSON; out the outputs written; none of them is kept
// after the call. After the last tick before an accepted hand-over it also
// releases the lease, so the new owner can start on time. Only the control
// loop calls it, and once warmed up it allocates nothing.
func (p *Participant) Publish(tick int64, state, sample json.RawMessage, out []float64, h Health) error {
	epoch := p.driveEpoch.Load()
	if epoch == 0 {
		return nil
	}
	handover := p.handover.Load() // the frames carry the commitment
	p.seq++
	p.frame = Frame{
		Schema: p.cfg.Schema, Instance: p.cfg.Instance, Version: p.cfg.Version, Epoch: epoch,
		Seq: p.seq, Tick: tick, TickNs: tick * int64(p.cfg.Period), Handover: handover,
		State: state, Sample: sample, Out: out, Health: h,
	}
	storeMax(&p.lastTick, tick)
	last := handover != nil && tick == handover.Tick-1
	data, err := p.enc.Encode(&p.frame)
	p.frame.State, p.frame.Sample, p.frame.Out = nil, nil, nil // the caller's
	if err != nil {
		return fmt.Errorf("handoff: encode frame: %w", err)
	}
	p.enqueue(data)
	p.undo = nil // the lease accepted a write at our epoch: nothing to step back to
	if last {
		p.release(epoch)
	}
	return nil
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for o := v.Load(); n > o && !v.CompareAndSwap(o, n); o = v.Load() {
	}
}

// outboxFrames is how many encoded frames may wait for the NATS connection
// (about 30 ms at 2000 Hz, 250 ms at 250 Hz): more than that means the
// path is stalled, and the oldest go first; a follower sees the sequence
// gap and hydrates from the newest.
const outboxFrames = 64

// enqueue hands a frame to sendLoop without ever blocking the control
// loop: nats.go's Publish takes the connection's lock, which its flusher
// holds while it writes to the socket, and writes to the socket itself
// when its buffer is full, so a slow or starved NATS server would stall
// the flight. It copies data into a buffer sendLoop gave back, so frames
// cost no allocation once the outbox has warmed up.
func (p *Participant) enqueue(data []byte) {
	var b []byte
	select {
	case b = <-p.free:
	default:
	}
	b = append(b[:0], data...)
	for {
		select {
		case p.out <- b:
			return
		default:
		}
		select {
		case old := <-p.out:
			p.dropped.Add(1)
			p.recycle(old)
		default:
		}
	}
}

// recycle gives a sent or dropped frame's buffer back to enqueue.
func (p *Participant) recycle(b []byte) {
	select {
	case p.free <- b:
	default:
	}
}

// sendLoop publishes the frames enqueue hands it, in order.
func (p *Participant) sendLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case data := <-p.out:
			if err := p.nc.Publish(p.sub.Frames(), data); err != nil {
				p.dropped.Add(1)
			}
			p.recycle(data) // Publish copied it into the connection's buffer
		}
	}
}

// onFrame handles one frame (NATS goroutine; calls are serialised).
func (p *Participant) onFrame(data []byte) {
	f, err := DecodeFrame(data)
	if err != nil {
		p.count(&p.counts.malformed)
		return
	}
	if f.Instance == p.cfg.Instance {
		return
	}
	p.frameMu.Lock()
	defer p.frameMu.Unlock()
	now := p.now()
	prev, role, ok := p.admit(f)
	if !ok {
		return
	}
	same := prev != nil && prev.Instance == f.Instance
	consecutive := same && f.Seq == prev.Seq+1
	match := false
	if consecutive && role != RoleOwner {
		out, err := p.model.Replay(prev.State, f.Sample)
		match = err == nil && maxDiff(out, f.Out) <= p.cfg.Tolerance
		if !match {
			p.count(&p.counts.diverged)
		}
	}

	p.mu.Lock()
	if same && f.Seq != prev.Seq+1 {
		p.counts.gaps++
	}
	switch {
	case !match:
		p.streak, p.since = 0, f.TickNs
	case p.streak == 0:
		p.streak, p.since = 1, prev.TickNs
	default:
		p.streak++
	}
	p.latest = f
	storeMax(&p.lastTick, f.Tick)
	p.lagNs = now - f.TickNs
	if h := f.Handover; h != nil && h.To == p.cfg.Instance && p.role != RoleOwner {
		p.expect(*h, f.Epoch)
	}
	p.mu.Unlock()
	select {
	case p.frameCh <- struct{}{}:
	default:
	}
}

// admit checks a decoded frame of another instance against what is held
// and returns the previous frame and our role if it is to be used.
func (p *Participant) admit(f *Frame) (prev *Frame, role Role, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch l := p.latest; {
	case l != nil && l.Instance == f.Instance && f.Tick <= l.Tick:
		return nil, "", false // older than what we hold (the late-join fetch raced a live frame)
	case !slices.Contains(p.cfg.Accepts, f.Schema):
		p.counts.incompatible++
		return nil, "", false
	case f.Epoch < p.highest:
		p.counts.staleFrames++ // a fenced instance that has not noticed yet
		return nil, "", false
	}
	p.highest = f.Epoch
	return p.latest, p.role, true
}

func (p *Participant) count(n *uint64) {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
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

// onControl answers a coordinator request. The answer goes out after the
// lock is released: it is a NATS publish, which waits on the connection's
// lock while its flusher writes, and the control loop takes our lock
// every tick.
func (p *Participant) onControl(m *nats.Msg) {
	var c Control
	if err := json.Unmarshal(m.Data, &c); err != nil {
		p.count(&p.counts.malformed)
		respond(m, fmt.Errorf("%w: control: %v", ErrMalformed, err))
		return
	}
	respond(m, p.control(c))
}

// control carries out a coordinator request.
func (p *Participant) control(c Control) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.mirror()
	switch c.Op {
	case "expect":
		return p.expectHandover(c.Handover, c.From)
	case "handover":
		return p.acceptHandover(c.Handover)
	case "retire":
		if p.role == RoleOwner {
			return errors.New("handoff: the owner cannot retire; hand over first")
		}
		p.setRole(RoleRetired, "retired")
		return nil
	}
	p.counts.malformed++
	return fmt.Errorf("%w: unknown op %q", ErrMalformed, c.Op)
}

// expectHandover takes the coordinator's word that the owner of epoch
// from is about to be asked to hand over to this instance with h (lock
// held). The coordinator asks the owner only after this answer, so the
// hand-over never waits for the owner's stamped frames, which a loaded
// machine delays by tens of milliseconds: the owner releases at h.Tick and
// nobody would drive until they came. Driving is still decided at the
// lease (decide): a hand-over the owner refuses or never hears is void at
// the holder timeout past h.Tick, and one that another instance overtook
// is void at once.
func (p *Participant) expectHandover(h *Handover, from uint64) error {
	switch {
	case h == nil || h.To != p.cfg.Instance || from == 0 || h.Epoch <= from || h.Fallback <= h.Epoch:
		p.counts.malformed++
		return fmt.Errorf("%w: expect needs a hand-over to this instance from an older epoch, with growing epochs", ErrMalformed)
	case p.role != RoleCandidate && p.role != RoleStandby:
		return fmt.Errorf("handoff: %s is %s; only a candidate or a standby expects a hand-over", p.cfg.Instance, p.role)
	case from < p.highest:
		return fmt.Errorf("handoff: epoch %d cannot hand over: epoch %d is newer", from, p.highest)
	}
	p.expect(*h, from)
	p.note(slog.LevelInfo, "handoff: hand-over expected", "tick", h.Tick, "from_epoch", from, "epoch", h.Epoch, "current_tick", p.curTick.Load())
	return nil
}

// expect records a hand-over to this instance by the owner of epoch from
// (lock held), unless one to a newer epoch is already recorded: the
// coordinator's word and the owner's stamped frames say the same.
func (p *Participant) expect(h Handover, from uint64) {
	if p.commit == nil || p.commit.Epoch < h.Epoch {
		p.commit = &commitment{Handover: h, from: from}
	}
}

// acceptHandover takes an owner's commitment to stop before h.Tick (lock
// held).
func (p *Participant) acceptHandover(h *Handover) error {
	now := p.curTick.Load()
	switch {
	case h == nil || h.To == "" || h.To == p.cfg.Instance:
		p.counts.malformed++
		return fmt.Errorf("%w: handover needs another instance to hand to", ErrMalformed)
	case p.role != RoleOwner:
		return fmt.Errorf("handoff: %s is %s, not the owner", p.cfg.Instance, p.role)
	case p.pending != nil:
		return fmt.Errorf("handoff: a hand-over at tick %d is already pending", p.pending.Tick)
	case h.Tick <= now+1:
		return fmt.Errorf("handoff: hand-over tick %d is not ahead of the current tick %d", h.Tick, now)
	case h.Epoch <= p.epoch || h.Fallback <= h.Epoch:
		return fmt.Errorf("handoff: epochs must grow: owner %d, new %d, fallback %d", p.epoch, h.Epoch, h.Fallback)
	}
	hc := *h
	p.pending = &hc
	p.note(slog.LevelInfo, "handoff: hand-over accepted", "tick", h.Tick, "to", h.To, "epoch", h.Epoch, "current_tick", now)
	return nil
}

// respond answers a request with err's text, or OK.
func respond(m *nats.Msg, err error) {
	if m.Reply == "" {
		return
	}
	r := Reply{OK: err == nil}
	if err != nil {
		r.Error = err.Error()
	}
	b, _ := json.Marshal(r)
	m.Respond(b)
}

// Status returns the participant's current status.
func (p *Participant) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	s := Status{
		Instance: p.cfg.Instance, Version: p.cfg.Version, Role: p.role, Epoch: p.epoch,
		Accepts: p.cfg.Accepts, Streak: p.streak, LagMs: float64(p.lagNs) / 1e6,
		Diverged: p.counts.diverged, Gaps: p.counts.gaps, Malformed: p.counts.malformed,
		Incompatible: p.counts.incompatible, Stale: p.counts.staleFrames, TakenBack: p.taken, T: now,
		Dropped:  p.dropped.Load(),
		LastTick: p.lastTick.Load(),
	}
	if f := p.latest; f != nil && p.role != RoleOwner && p.streak > 0 {
		live := now-f.TickNs <= int64(p.cfg.MaxLag) && p.lagNs <= int64(p.cfg.MaxLag)
		s.Synced = live && f.TickNs-p.since >= int64(p.cfg.SyncFor)
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
		p.writeNotes()
		p.publishStatus()
	}
}
