package handofftest

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// Exit is why a Loop ended.
type Exit string

// Exits.
const (
	ExitRunning Exit = ""        // not ended yet
	ExitRetired Exit = "retired" // Tick returned Retire
	ExitStopped Exit = "stopped" // Terminate: ended at a tick boundary
	ExitKilled  Exit = "killed"  // Kill: ended at once
)

// Decided is what a Loop did in one tick.
type Decided struct {
	Tick     int64
	Write    bool
	Epoch    uint64
	Hydrated bool // the decision carried a state to load
	Retire   bool
	Fenced   bool // the ledger refused the write
	X        float64
}

// Loop drives a Participant the way an app's control loop does: it sleeps
// on the absolute tick grid (mono.SleepUntil), calls Tick at the start of
// every tick, loads Decision.Hydrate, steps the trivial control law on
// SampleAt(tick) (after catching up on its own samples of the ticks the
// hydrated state is behind by, as Decision says), and when told to write, writes to the Ledger and
// publishes the frame. Like the flight app, a tick that overruns the next
// grid point makes the loop skip to the next grid tick; skipped ticks are
// recorded.
type Loop struct {
	p        *handoff.Participant
	instance string
	period   int64
	ledger   *Ledger

	term   atomic.Bool
	paused atomic.Bool
	kill   chan struct{}
	ack    chan struct{} // the loop saw a Pause
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	recent  *handoff.Recent[Sample]
	state   State
	log     []Decided
	skipped []int64
	exit    Exit
	pubErrs int
}

// StartLoop starts a loop for p, named instance, on a grid of period,
// writing to ledger. The first tick is the next grid point.
func StartLoop(p *handoff.Participant, instance string, period time.Duration, ledger *Ledger) *Loop {
	l := &Loop{p: p, instance: instance, period: int64(period), ledger: ledger, recent: handoff.NewRecent[Sample](p.CatchUpTicks()),
		kill: make(chan struct{}), ack: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *Loop) killed() bool {
	select {
	case <-l.kill:
		return true
	default:
		return false
	}
}

func (l *Loop) end(e Exit) {
	l.mu.Lock()
	l.exit = e
	l.mu.Unlock()
	close(l.done)
}

func (l *Loop) run() {
	next := (mono.Now()/l.period + 1) * l.period
	for {
		mono.SleepUntil(next)
		if l.killed() {
			l.end(ExitKilled)
			return
		}
		if l.paused.Load() {
			// A stalled loop: the grid goes on, the loop does nothing.
			select {
			case l.ack <- struct{}{}:
			default:
			}
			next += l.period
			continue
		}
		tick := next / l.period
		// Read the stop request before Tick: a Retire that was decided
		// before the request must win over it.
		stop := l.term.Load()
		d := l.p.Tick(tick)
		rec := Decided{Tick: tick, Write: d.Write, Epoch: d.Epoch, Hydrated: d.Hydrate != nil, Retire: d.Retire}
		if d.Retire {
			l.record(rec)
			l.end(ExitRetired)
			return
		}
		if stop {
			// Told to stop: end at this tick boundary without writing.
			l.record(rec)
			l.end(ExitStopped)
			return
		}
		l.mu.Lock()
		if d.Hydrate != nil {
			var s State
			if err := json.Unmarshal(d.Hydrate, &s); err == nil {
				l.state = s
				l.recent.CatchUp(d, tick, func(in Sample) { Step(&l.state, in) })
			}
		}
		in := SampleAt(tick)
		l.recent.Put(tick, in)
		rec.X = l.state.X
		out := Step(&l.state, in)
		st := l.state
		l.mu.Unlock()
		if d.Write {
			err := l.ledger.Write(Write{Tick: tick, Instance: l.instance, Epoch: d.Epoch, X: rec.X, Out: out[0]})
			switch {
			case errors.Is(err, lease.ErrStale):
				rec.Fenced = true
				l.p.Fenced()
			case err == nil:
				state, _ := json.Marshal(st)
				sample, _ := json.Marshal(in)
				if err := l.p.Publish(tick, state, sample, out, handoff.Health{AltM: 1}); err != nil {
					l.mu.Lock()
					l.pubErrs++
					l.mu.Unlock()
				}
			}
		}
		l.record(rec)

		next += l.period
		if now := mono.Now(); now >= next {
			// Overran: skip to the next grid tick rather than bunch up.
			skip := (now-next)/l.period + 1
			l.mu.Lock()
			for i := range skip {
				l.skipped = append(l.skipped, next/l.period+i)
			}
			l.mu.Unlock()
			next += skip * l.period
		}
	}
}

func (l *Loop) record(d Decided) {
	l.mu.Lock()
	l.log = append(l.log, d)
	l.mu.Unlock()
}

// Terminate asks the loop to end at its next tick boundary, after calling
// Tick (so a Retire decision still wins), and waits up to grace for it;
// then it kills the loop. It returns how the loop ended.
func (l *Loop) Terminate(grace time.Duration) Exit {
	l.term.Store(true)
	select {
	case <-l.done:
	case <-time.After(grace):
		l.Kill()
	}
	return l.Exit()
}

// Pause stalls the loop: from its next tick on it neither calls Tick nor
// writes nor publishes, until Resume. It returns once the tick in progress
// is over (or the loop has ended). Paused ticks are not counted as skipped.
func (l *Loop) Pause() {
	select {
	case <-l.ack: // a stale acknowledgement of an earlier Pause
	default:
	}
	l.paused.Store(true)
	select {
	case <-l.ack:
	case <-l.done:
	}
}

// Resume ends a Pause: the loop carries on at the next grid tick with the
// state it had.
func (l *Loop) Resume() { l.paused.Store(false) }

// Kill ends the loop at once (before its next Tick) and waits for it.
func (l *Loop) Kill() {
	l.once.Do(func() { close(l.kill) })
	<-l.done
}

// Done is closed when the loop has ended.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Exit returns how the loop ended, or ExitRunning.
func (l *Loop) Exit() Exit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exit
}

// Decisions returns what the loop did, tick by tick.
func (l *Loop) Decisions() []Decided {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

// Skipped returns the grid ticks the loop skipped because a tick overran.
func (l *Loop) Skipped() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.skipped)
}

// SkippedIn counts the skipped ticks in [from, to].
func (l *Loop) SkippedIn(from, to int64) int {
	n := 0
	for _, t := range l.Skipped() {
		if t >= from && t <= to {
			n++
		}
	}
	return n
}

// State returns the loop's controller state.
func (l *Loop) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// PublishErrors counts frames Publish failed to send.
func (l *Loop) PublishErrors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pubErrs
}
