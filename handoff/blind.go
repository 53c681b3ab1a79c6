package handoff

// blind remembers the latest spans in which an instance that watches the
// owner (a candidate, a standby) did not run its loop: the gaps between
// its ticks beyond one tick. decide does not count the owner's silence
// during them, because whatever held this instance back may have held
// the owner too, and the owner's writes may come back later than this
// instance's reads of the lease do. A soak saw it: drone-sim's bus
// threads froze both flight loops for 950 ms, the owner's next write was
// not through yet when the standby's lease read was, 6 ms after both
// woke, and the standby took back from a live owner.
type blind struct {
	last  int64 // when the loop last ran a tick (0 = not watching)
	spans [8]span
	n     int // spans recorded, ever
}

// span is [from, to), CLOCK_MONOTONIC ns.
type span struct{ from, to int64 }

// tick records that the loop runs a tick at now; a gap since the last one
// longer than two ticks of period is a span it did not run in.
func (b *blind) tick(now, period int64) {
	if b.last != 0 && now-b.last > 2*period {
		b.spans[b.n%len(b.spans)] = span{b.last + period, now}
		b.n++
	}
	b.last = now
}

// stop forgets the last tick: the instance no longer watches (it drives).
func (b *blind) stop() { b.last = 0 }

// within returns how much of [from, to) the remembered spans cover.
func (b *blind) within(from, to int64) int64 {
	var d int64
	for _, s := range b.spans[:min(b.n, len(b.spans))] {
		d += max(0, min(to, s.to)-max(from, s.from))
	}
	return d
}
