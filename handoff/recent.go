package handoff

// Recent keeps a control loop's own samples of its last ticks, so that
// after a Decision's Hydrate it can step the owner's state forward over the
// ticks the owner's frame did not cover yet. The zero value keeps nothing;
// NewRecent sizes it (Participant.CatchUpTicks).
type Recent[S any] struct {
	ticks []int64
	vals  []S
}

// NewRecent keeps the samples of the last n ticks.
func NewRecent[S any](n int) *Recent[S] {
	return &Recent[S]{ticks: make([]int64, n), vals: make([]S, n)}
}

// Put records the sample of tick (ticks grow).
func (r *Recent[S]) Put(tick int64, s S) {
	if len(r.ticks) == 0 {
		return
	}
	i := int(uint64(tick) % uint64(len(r.ticks)))
	r.ticks[i], r.vals[i] = tick, s
}

// CatchUp calls step with the samples of the ticks after d.HydrateTick and
// before tick, in order, skipping ticks it has none of (the loop skipped
// them). It does nothing for a decision without Hydrate.
func (r *Recent[S]) CatchUp(d Decision, tick int64, step func(S)) {
	if d.Hydrate == nil || len(r.ticks) == 0 {
		return
	}
	for t := max(d.HydrateTick+1, tick-int64(len(r.ticks))); t < tick; t++ {
		if i := int(uint64(t) % uint64(len(r.ticks))); r.ticks[i] == t {
			step(r.vals[i])
		}
	}
}
