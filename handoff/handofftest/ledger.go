package handofftest

import (
	"slices"
	"sync"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// Write is one actuator write admitted by the ledger's fence.
type Write struct {
	Tick     int64
	Instance string
	Epoch    uint64
	X        float64 // the state the output was computed from
	Out      float64
	At       int64 // when the fence admitted it (CLOCK_MONOTONIC ns); set by Write
}

// Ledger stands for the actuators: every write passes through a lease fence
// (lease.Memory) that stamps its heartbeat, and the admitted and refused
// writes are recorded per tick. It is the participants' and the
// coordinator's lease too (handoff.Lease, lease.Reader). It is safe for
// concurrent use.
type Ledger struct {
	fence    lease.Memory
	mu       sync.Mutex
	writes   map[int64][]Write
	refused  []Write
	released []uint64
	relAt    map[uint64]int64 // when each epoch was released
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{writes: map[int64][]Write{}, relAt: map[uint64]int64{}} }

// Write admits w through the fence and records it. It returns an error
// wrapping lease.ErrStale or lease.ErrHeld if the fence refused it.
func (l *Ledger) Write(w Write) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.At = mono.Now()
	if err := l.fence.Admit(w.Epoch, w.At); err != nil {
		l.refused = append(l.refused, w)
		return err
	}
	l.fence.Stamp(w.Epoch, w.At)
	l.writes[w.Tick] = append(l.writes[w.Tick], w)
	return nil
}

// Beat implements lease.Reader.
func (l *Ledger) Beat() (lease.Beat, error) { return l.fence.Beat(), nil }

// Release implements handoff.Lease.
func (l *Ledger) Release(epoch uint64) error {
	l.fence.Release(epoch)
	l.mu.Lock()
	l.released = append(l.released, epoch)
	if _, ok := l.relAt[epoch]; !ok {
		l.relAt[epoch] = mono.Now()
	}
	l.mu.Unlock()
	return nil
}

// ReleasedAt returns when epoch was first released (CLOCK_MONOTONIC ns),
// or 0 if it was not.
func (l *Ledger) ReleasedAt(epoch uint64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.relAt[epoch]
}

// Released returns the epochs released, in order.
func (l *Ledger) Released() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.released)
}

// At returns the admitted writes of tick.
func (l *Ledger) At(tick int64) []Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes[tick])
}

// Refused returns the writes the fence refused.
func (l *Ledger) Refused() []Write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.refused)
}

// Span returns the first and last tick with an admitted write (0, 0 if none).
func (l *Ledger) Span() (first, last int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for t := range l.writes {
		if first == 0 || t < first {
			first = t
		}
		last = max(last, t)
	}
	return first, last
}

// Ticks returns the ticks with admitted writes by instance, in order.
func (l *Ledger) Ticks(instance string) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []int64
	for t, ws := range l.writes {
		for _, w := range ws {
			if w.Instance == instance {
				ts = append(ts, t)
				break
			}
		}
	}
	slices.Sort(ts)
	return ts
}

// Doubles returns the ticks with more than one admitted write, in order.
func (l *Ledger) Doubles() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []int64
	for t, ws := range l.writes {
		if len(ws) > 1 {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// Missing returns the ticks in [from, to] without an admitted write.
func (l *Ledger) Missing(from, to int64) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []int64
	for t := from; t <= to; t++ {
		if len(l.writes[t]) == 0 {
			ts = append(ts, t)
		}
	}
	return ts
}
