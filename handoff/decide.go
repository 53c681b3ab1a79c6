package handoff

import "github.com/skyswap/skyswap/hw/lease"

// view is what a candidate or standby knows at the start of a tick when it
// decides whether to drive. Times are CLOCK_MONOTONIC ns.
type view struct {
	tick, now, period int64
	holder            int64 // how long the holder's writes may stop before it is presumed gone

	// commitTick is the first tick of a hand-over to this instance that an
	// owner of epoch from stamped on its frames (0 = none seen).
	commitTick int64
	from       uint64
	// A standby watches the owner of epoch watch and takes back with
	// fallback (0 = it does not take back).
	watch, fallback uint64
	ownerSeen       int64 // tick time of the newest frame of the watched owner (0 = none)

	beat     lease.Beat
	haveBeat bool
	blind    blind // when this instance did not run: see silent
}

// verdict is decide's answer.
type verdict int

const (
	stay        verdict = iota // do not drive; follow the owner's frames
	readLease                  // read the lease, then decide again
	waitRelease                // the owner still holds the lease: read it again shortly
	dropCommit                 // the hand-over to us is void: another instance holds the hardware
	takeOver                   // drive at the committed epoch
	takeBack                   // drive at the fallback epoch
)

// decide is the cut-over and take-back rule, in one place:
//
//   - Take over at or after the committed tick once the lease shows the
//     owner released its epoch (it wrote its last tick), or once its writes
//     stopped for the holder timeout (it died after committing). Never if
//     the lease holds a newer epoch than the one handing over: someone else
//     (the standby) took the hardware, and the hand-over is void; void too
//     if the owner writes on a holder timeout past its promise.
//   - A standby takes back at its fallback epoch only when the lease shows
//     no accepted write for the holder timeout: late frames prove nothing.
//     Frames fresh by their tick time prove the owner alive without
//     reading the lease.
//
// Silence is judged at the tick's due time, not at the moment this
// instance got to run: if the machine stalled (a hypervisor, an
// interrupt storm), it stalled the owner too, and the owner's silence
// during this instance's own late wake-up proves nothing. Nor does it on
// the ticks after: the owner's silence counts only while this instance
// ran (blind), so a dead owner is found a holder timeout of watching
// after its last write, whatever stalls came between.
func decide(v view) verdict {
	due := v.tick * v.period
	if v.commitTick > 0 && v.tick >= v.commitTick {
		if !v.haveBeat {
			return readLease
		}
		switch {
		case v.beat.Highest > v.from:
			return dropCommit
		case v.beat.Released >= v.from, v.silent(due) >= v.holder:
			return takeOver
		case due-v.commitTick*v.period > v.holder:
			return dropCommit
		}
		return waitRelease
	}
	if v.fallback == 0 || (v.ownerSeen > 0 && v.now-v.ownerSeen < v.holder/2) {
		return stay
	}
	if !v.haveBeat {
		return readLease
	}
	if v.beat.Highest <= v.watch && v.silent(due) >= v.holder {
		return takeBack
	}
	return stay
}

// silent returns how long before due the owner's last accepted write was,
// less the time in between that this instance did not run (blind).
func (v *view) silent(due int64) int64 {
	s := v.beat.Silent(due)
	if v.beat.T == 0 {
		return s // never written
	}
	return s - v.blind.within(v.beat.T, due)
}
