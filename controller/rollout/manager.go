package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
)

// Defaults of Config's zero fields, and the Manager's rhythm.
const (
	// DefaultSession is the client id of the Manager's persistent MQTT
	// session.
	DefaultSession = "skyswap-ground-rollouts"
	// DefaultSettle is how long after connecting the Manager waits before
	// it picks targets or judges a drone silent: the broker first
	// delivers the drones' retained states and what it kept for the
	// session (nats-server resends a message left unacknowledged by a
	// ground that died after its ack wait, 30 s, but its states at once).
	DefaultSettle = 3 * time.Second
	// tick is how often rollouts advance and changed records are written.
	tick = 250 * time.Millisecond
	// senders publish commands side by side.
	senders = 16
	// closeSends bounds Close's wait for the commands still queued.
	closeSends = 10 * time.Second
)

// Config configures Open. Link and Dir are required; every other zero
// value means the default documented on the field.
type Config struct {
	// Link is the broker (Broker, credentials, TLS files) and the signer
	// (Key, KeyID) of every command; Drone, App and Timeout are not used.
	// Its Session, "" here, means DefaultSession: one ground at a time may
	// use a session id.
	Link push.Config
	// Dir holds the rollouts' records, one file each.
	Dir string
	// Registry is where image tags are pinned (push.Resolve), HOST:PORT;
	// "" accepts pinned images only. PlainHTTP reaches it over plain HTTP.
	Registry  string
	PlainHTTP bool
	// Settle is DefaultSettle when 0.
	Settle time.Duration
	// OnChange, when not nil, receives a rollout's record after it
	// changed, at most once per tick (250 ms): the ground's page. It must
	// not block.
	OnChange func(Record)
	// Log receives the rollouts' progress; nil discards it.
	Log *slog.Logger
	// Now is the ground's clock; nil means time.Now.
	Now func() time.Time
}

// Stats count what the Manager ignored: the bad input it was given, over
// every rollout.
type Stats struct {
	Rollouts int    `json:"rollouts"`
	Sent     uint64 `json:"sent"` // commands published
	// UnknownRollout: events of commands of the rollout id form whose
	// rollout the ground does not know.
	UnknownRollout uint64 `json:"unknown_rollout"`
	// WrongDrone: events of a rollout's command from another drone than
	// its target, or naming another drone than their topic.
	WrongDrone uint64 `json:"wrong_drone"`
	// ForgedState: states that name another drone than their topic.
	ForgedState uint64 `json:"forged_state"`
	// Malformed: events and states that are not their JSON.
	Malformed uint64 `json:"malformed"`
	// Late: events of a rollout's command after it ended.
	Late uint64 `json:"late"`
}

// Manager runs rollouts: it keeps their records, follows the drones'
// events and states on its own persistent MQTT session, and signs and
// sends the waves' commands. Its methods are safe for concurrent use.
type Manager struct {
	cfg    Config
	store  *store
	w      *push.Watcher
	signer push.Signer
	log    *slog.Logger
	sends  chan command.Command
	cancel context.CancelFunc
	looped sync.WaitGroup // the loop
	sent   sync.WaitGroup // the senders
	// sending bounds the senders' waits: stopSend ends it closeSends
	// after Close begins.
	sending  context.Context
	stopSend context.CancelFunc

	mu      sync.Mutex
	runs    map[string]*run
	states  map[string]report.State // drone -> newest state
	acks    []push.Message          // applied, to acknowledge once written
	stats   Stats
	since   time.Time // connected
	settled chan struct{}
	shown   map[string]bool // changed since OnChange was last called
}

// Open loads the records in cfg.Dir, connects to the broker and resumes
// every rollout that was live: a command the broker acknowledged is never
// sent again, and one recorded as sent and never published goes out once
// the Manager has settled and heard no answer to it.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Link.Session == "" {
		cfg.Link.Session = DefaultSession
	}
	st, err := openStore(cfg.Dir)
	if err != nil {
		return nil, err
	}
	recs, err := st.load()
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, store: st, log: cfg.Log, sends: make(chan command.Command, 4096),
		signer: push.Signer{Key: cfg.Link.Key, KeyID: cfg.Link.KeyID, Now: cfg.Now},
		runs:   map[string]*run{}, states: map[string]report.State{}, settled: make(chan struct{}), shown: map[string]bool{}}
	if _, err := m.signer.Sign(command.Command{ID: "check", Kind: command.KindStatus, Drone: "check"}); err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	for _, rec := range recs {
		m.runs[rec.ID] = newRun(rec)
		if rec.State.Live() {
			m.log.Info("rollout resumed", "rollout", rec.ID, "state", rec.State, "wave", rec.Wave+1)
		}
	}
	if m.w, err = push.Watch(ctx, cfg.Link, "fleet/+/events", "fleet/+/state"); err != nil {
		return nil, fmt.Errorf("rollout: follow the fleet: %w", err)
	}
	m.since = cfg.Now()
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.sending, m.stopSend = context.WithCancel(context.Background())
	m.looped.Add(1)
	go m.loop(life)
	m.sent.Add(senders)
	for range senders {
		go m.sender()
	}
	return m, nil
}

// Close stops following, publishes the commands already recorded as sent
// (for at most closeSends), writes what changed, and disconnects. The
// rollouts resume at the next Open.
func (m *Manager) Close() {
	m.cancel()
	m.looped.Wait()
	close(m.sends)
	stop := time.AfterFunc(closeSends, m.stopSend)
	m.sent.Wait()
	stop.Stop()
	m.stopSend()
	m.mu.Lock()
	m.flush(true)
	m.mu.Unlock()
	m.w.Close()
}

// loop applies the broker's messages and advances the rollouts each tick.
func (m *Manager) loop(ctx context.Context) {
	defer m.looped.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case msg := <-m.w.Messages():
			m.mu.Lock()
			m.handle(msg)
			m.mu.Unlock()
		case <-t.C:
			m.tick(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// sender publishes commands until Close, then those still queued, and
// records each one the broker acknowledged. A command left unacknowledged
// (the broker unreachable for a minute, or the ground killed) is
// published again at the next Open.
func (m *Manager) sender() {
	defer m.sent.Done()
	for c := range m.sends {
		ctx, cancel := context.WithTimeout(m.sending, time.Minute)
		err := m.w.Send(ctx, c)
		cancel()
		if err != nil {
			m.log.Warn("command not acknowledged by the broker; the link resends it if it comes back", "command", c.ID, "err", err)
			continue
		}
		id, _ := rolloutOf(c.ID)
		m.mu.Lock()
		if r := m.runs[id]; r != nil {
			r.published(c.ID, m.cfg.Now())
		}
		m.mu.Unlock()
	}
}

// tick advances every live rollout, writes the records that changed
// (before their new commands go out) and sends the commands.
func (m *Manager) tick(ctx context.Context) {
	m.mu.Lock()
	now := m.cfg.Now()
	judge := now.Sub(m.since) >= m.cfg.Settle
	var out []command.Command
	if judge {
		select {
		case <-m.settled:
		default:
			close(m.settled)
			for _, r := range m.runs {
				out = append(out, m.republish(r, now)...)
			}
		}
	}
	for _, r := range m.runs {
		out = append(out, m.advance(r, now, judge)...)
	}
	m.flush(false)
	m.mu.Unlock()
	for _, c := range out {
		select {
		case m.sends <- c:
		case <-ctx.Done(): // Close: the queue is full; the next Open publishes the rest
			m.log.Warn("closing: command recorded and not published; it goes out when the ground starts again", "command", c.ID)
		}
	}
}

// advance steps r, signs its orders and writes its record before they
// are sent; if the record cannot be written, nothing is sent and the
// rollout pauses.
func (m *Manager) advance(r *run, now time.Time, judge bool) []command.Command {
	before := r.rec.State
	orders := r.step(now, judge, m.states)
	if r.rec.State != before {
		m.log.Info("rollout "+string(r.rec.State), "rollout", r.rec.ID, "wave", r.rec.Wave+1, "reason", r.rec.Reason)
	}
	if len(orders) == 0 {
		return nil
	}
	signer := m.signer
	signer.TTL = r.rec.Spec.ttl()
	out := make([]command.Command, 0, len(orders))
	for _, o := range orders {
		c, err := signer.Sign(o.cmd)
		if err != nil {
			for _, o := range orders {
				r.unsent(o)
			}
			r.set(Paused, "cannot sign "+o.cmd.ID+": "+err.Error())
			return nil
		}
		out = append(out, c)
	}
	for i, o := range orders {
		r.sent(o, out[i], now)
	}
	if err := m.store.write(r.rec); err != nil {
		for _, o := range orders {
			r.unsent(o)
		}
		r.set(Paused, err.Error()+": nothing sent; free the disk and resume")
		m.log.Error("rollout paused: its record cannot be written", "rollout", r.rec.ID, "err", err)
		return nil
	}
	r.dirty = false
	m.shown[r.rec.ID] = true
	m.stats.Sent += uint64(len(out))
	m.log.Info("sending", "rollout", r.rec.ID, "wave", r.rec.Wave+1, "commands", len(out))
	return out
}

// republish signs again the commands of r that an earlier ground recorded
// as sent and was killed before publishing (run.unpublished), with the
// issue time they were recorded with: the same bytes, so a drone that
// got the first copy after all sees a QoS 1 redelivery and refuses it as
// a replay. m.mu is held; m.settled was just closed, so the drones'
// answers that came while the ground was down have been applied.
func (m *Manager) republish(r *run, now time.Time) []command.Command {
	signer := m.signer
	signer.TTL = r.rec.Spec.ttl()
	var out []command.Command
	for _, x := range r.unpublished(m.since, now) {
		issued := r.cmd(x).Expires.Add(-signer.TTL)
		signer.Now = func() time.Time { return issued }
		o := r.order(x)
		c, err := signer.Sign(o.cmd)
		if err != nil {
			m.log.Error("command recorded as sent cannot be signed again; its drone ends unreached", "command", o.cmd.ID, "err", err)
			continue
		}
		m.log.Info("publishing again a command the ground recorded and was stopped before publishing", "rollout", r.rec.ID, "command", c.ID)
		out = append(out, c)
	}
	return out
}

// flush writes the changed records, acknowledges the messages applied to
// them, and shows the changes. m.mu is held.
func (m *Manager) flush(final bool) {
	ok := true
	for id, r := range m.runs {
		if !r.dirty {
			continue
		}
		if err := m.store.write(r.rec); err != nil {
			m.log.Error("rollout record not written; its events come again", "rollout", id, "err", err)
			ok = false
			continue
		}
		r.dirty = false
		m.shown[id] = true
	}
	if ok {
		for _, msg := range m.acks {
			msg.Ack()
		}
		m.acks = m.acks[:0]
	}
	if m.cfg.OnChange == nil || final {
		return
	}
	for id := range m.shown {
		m.cfg.OnChange(*clone(m.runs[id].rec))
		delete(m.shown, id)
	}
}

// handle applies one message: a drone's event or state. m.mu is held.
func (m *Manager) handle(msg push.Message) {
	drone, kind, _ := broker.ParseTopic(msg.Topic)
	switch kind {
	case "events":
		m.event(drone, msg.Payload)
	case "state":
		m.state(drone, msg.Payload)
	}
	m.acks = append(m.acks, msg)
}

func (m *Manager) event(drone string, payload []byte) {
	var ev report.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		m.stats.Malformed++
		return
	}
	id, ok := rolloutOf(ev.Command)
	if !ok {
		return // a command of dronectl push or the page: not a rollout's
	}
	r := m.runs[id]
	if r == nil {
		m.stats.UnknownRollout++
		m.log.Warn("ignored: an event of a rollout this ground does not know", "drone", drone, "command", ev.Command)
		return
	}
	x, ok := r.cmds[ev.Command]
	if !ok || r.rec.Drones[x.drone].ID != drone || ev.Drone != drone {
		m.stats.WrongDrone++
		r.rec.Ignored.WrongDrone++
		r.dirty = true
		m.log.Warn("ignored: an event of a rollout's command from another drone", "rollout", id, "topic_drone", drone,
			"event_drone", ev.Drone, "command", ev.Command)
		return
	}
	if !r.event(x, ev, m.cfg.Now()) {
		m.stats.Late++
	}
}

func (m *Manager) state(drone string, payload []byte) {
	var st report.State
	if err := json.Unmarshal(payload, &st); err != nil {
		m.stats.Malformed++
		return
	}
	if st.Drone != drone {
		m.stats.ForgedState++
		m.log.Warn("ignored: a state on one drone's topic naming another", "topic_drone", drone, "state_drone", st.Drone)
		return
	}
	if prev, ok := m.states[drone]; ok && !st.Online {
		// A last will says offline and little else: keep what the drone
		// said of itself when online.
		if st.Committed == nil {
			st.Committed = prev.Committed
		}
		if st.Labels == nil {
			st.Labels = prev.Labels
		}
	}
	m.states[drone] = st
}

// Start pins spec's image, picks its targets among the drones the ground
// knows (after DefaultSettle since connecting), writes its record and
// returns it; the Manager then runs it. A spec that cannot work is a
// *SpecError.
func (m *Manager) Start(ctx context.Context, spec Spec) (Record, error) {
	if err := spec.Check(); err != nil {
		return Record{}, err
	}
	pinned, err := push.Resolve(ctx, spec.Image, m.cfg.Registry, m.cfg.PlainHTTP)
	if err != nil {
		return Record{}, err
	}
	spec.Image = pinned
	select {
	case <-m.settled:
	case <-ctx.Done():
		return Record{}, fmt.Errorf("rollout: the ground is still hearing from the fleet: %w", ctx.Err())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	targets := spec.targets(m.states)
	if len(targets) == 0 {
		return Record{}, specErr("drones", "no drone the ground knows matches: see the drones' states (dronectl status) and their labels (AGENT_LABELS)")
	}
	rec := newRecord(m.newID(), spec, targets, m.cfg.Now())
	if err := m.store.write(rec); err != nil {
		return Record{}, err
	}
	m.runs[rec.ID] = newRun(rec)
	m.shown[rec.ID] = true
	m.log.Info("rollout started", "rollout", rec.ID, "image", spec.Image, "drones", len(targets), "waves", len(rec.Waves))
	return *clone(rec), nil
}

// newID returns an unused rollout id, ro-<8 hex>. m.mu is held.
func (m *Manager) newID() string {
	for {
		var b [4]byte
		rand.Read(b[:])
		if id := IDPrefix + hex.EncodeToString(b[:]); m.runs[id] == nil {
			return id
		}
	}
}

// Get returns the record of rollout id.
func (m *Manager) Get(id string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[id]
	if r == nil {
		return Record{}, fmt.Errorf("%w: %q: dronectl rollout list shows the ground's", ErrNotFound, id)
	}
	return *clone(r.rec), nil
}

// List returns every rollout's record, newest first.
func (m *Manager) List() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, 0, len(m.runs))
	for _, r := range m.runs {
		out = append(out, *clone(r.rec))
	}
	slices.SortFunc(out, func(a, b Record) int { return b.Created.Compare(a.Created) })
	return out
}

// Pause stops rollout id from sending more: drones in flight finish.
func (m *Manager) Pause(id string) (Record, error) { return m.control(id, "pause") }

// Resume lets a paused rollout go on.
func (m *Manager) Resume(id string) (Record, error) { return m.control(id, "resume") }

// Cancel ends rollout id: nothing more is sent, drones in flight finish
// (a command waiting in an offline drone's session still runs if the
// drone returns before it expires), and nothing is rolled back.
func (m *Manager) Cancel(id string) (Record, error) { return m.control(id, "cancel") }

func (m *Manager) control(id, what string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[id]
	if r == nil {
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err := r.control(what); err != nil {
		return Record{}, err
	}
	if err := m.store.write(r.rec); err != nil {
		return Record{}, err
	}
	r.dirty = false
	m.shown[id] = true
	m.log.Info("rollout "+string(r.rec.State), "rollout", id, "reason", r.rec.Reason)
	return *clone(r.rec), nil
}

// Stats returns the Manager's counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats
	st.Rollouts = len(m.runs)
	return st
}

// clone deep-copies a record.
func clone(rec *Record) *Record {
	c := *rec
	c.Spec.Drones = slices.Clone(rec.Spec.Drones)
	c.Waves = slices.Clone(rec.Waves)
	c.Drones = slices.Clone(rec.Drones)
	for i := range c.Drones {
		if rb := c.Drones[i].Rollback; rb != nil {
			cp := *rb
			c.Drones[i].Rollback = &cp
		}
	}
	return &c
}
