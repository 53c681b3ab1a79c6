package handoff

import (
	"slices"
	"testing"

	"github.com/skyswap/skyswap/hw/lease"
)

func TestDecide(t *testing.T) {
	const (
		p      = int64(1_000_000) // 1000 Hz
		holder = 50 * p
		T      = int64(10_000) // the committed tick
	)
	at := func(tick int64) int64 { return tick * p }
	// A candidate committed to take over at T from epoch 1 with epoch 2.
	cand := view{period: p, holder: holder, commitTick: T, from: 1}
	// A standby that handed epoch 1 over to epoch 2 and takes back with 3.
	standby := view{period: p, holder: holder, watch: 2, fallback: 3}
	with := func(v view, tick, now int64, b *lease.Beat) view {
		v.tick, v.now = tick, now
		if b != nil {
			v.beat, v.haveBeat = *b, true
		}
		return v
	}
	// A standby whose loop stopped for 950 ms: its last tick before the
	// stall was T-951, its first after it T-1.
	var stalled blind
	stalled.tick(at(T-951), p)
	stalled.tick(at(T-1), p)
	afterStall := func(tick int64, b lease.Beat) view {
		v := with(standby, tick, at(tick), &b)
		v.blind = stalled
		return v
	}
	tests := []struct {
		name string
		v    view
		want verdict
	}{
		{"candidate before the cut-over tick", with(cand, T-1, at(T-1), nil), stay},
		{"candidate at the tick reads the lease", with(cand, T, at(T), nil), readLease},
		{"owner released: take over", with(cand, T, at(T), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 1), Released: 1}), takeOver},
		{"owner wrote T-1 but has not released yet: wait", with(cand, T, at(T), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 1)}), waitRelease},
		{"late frames: take over a few ticks late on the release", with(cand, T+3, at(T+3), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 1), Released: 1}), takeOver},
		{"owner died after committing: take over after the holder timeout", with(cand, T+51, at(T+51), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 1)}), takeOver},
		{"standby took back meanwhile: the hand-over is void", with(cand, T+60, at(T+60), &lease.Beat{Highest: 3, Epoch: 3, T: at(T + 55), Released: 1}), dropCommit},
		{"owner writes on past its promise: void", with(cand, T+52, at(T+52), &lease.Beat{Highest: 1, Epoch: 1, T: at(T + 51)}), dropCommit},
		{"a release of an older epoch is not ours", with(view{period: p, holder: holder, commitTick: T, from: 3}, T, at(T), &lease.Beat{Highest: 3, Epoch: 3, T: at(T - 1), Released: 2}), waitRelease},

		{"standby without a fallback never takes back", with(view{period: p, holder: holder}, T, at(T), &lease.Beat{}), stay},
		{"standby without frames reads the lease", with(standby, T, at(T), nil), readLease},
		{"standby: frame of 10 ms ago, no lease read", func() view { v := with(standby, T, at(T), nil); v.ownerSeen = at(T - 10); return v }(), stay},
		{"standby: frames 600 ms late but the lease shows writes", with(standby, T, at(T), &lease.Beat{Highest: 2, Epoch: 2, T: at(T - 1)}), stay},
		{"standby: writes stopped 49 ms ago", with(standby, T, at(T), &lease.Beat{Highest: 2, Epoch: 2, T: at(T - 49)}), stay},
		{"standby: writes stopped 50 ms ago: take back", with(standby, T, at(T), &lease.Beat{Highest: 2, Epoch: 2, T: at(T - 50)}), takeBack},
		{"standby woke 60 ms late, the owner's last write just before its due time: the machine stalled, stay", with(standby, T, at(T+60), &lease.Beat{Highest: 2, Epoch: 2, T: at(T - 1)}), stay},
		{"standby woke 60 ms late, the owner silent 50 ms by its due time: take back", with(standby, T, at(T+60), &lease.Beat{Highest: 2, Epoch: 2, T: at(T - 50)}), takeBack},
		{"candidate woke late after a stall: the owner's silence during it is no death", with(cand, T+1, at(T+60), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 1)}), waitRelease},
		{"standby after its own 950 ms stall, the owner's write not through yet: its silence in the stall is no death, stay", afterStall(T, lease.Beat{Highest: 2, Epoch: 2, T: at(T - 951)}), stay},
		{"standby after its own stall: the owner silent 49 ms of its watching", afterStall(T+47, lease.Beat{Highest: 2, Epoch: 2, T: at(T - 951)}), stay},
		{"standby after its own stall: the owner silent 50 ms of its watching, take back", afterStall(T+48, lease.Beat{Highest: 2, Epoch: 2, T: at(T - 951)}), takeBack},
		{"standby after its own stall: silent 2 ms before it and 48 after, take back", afterStall(T+47, lease.Beat{Highest: 2, Epoch: 2, T: at(T - 952)}), takeBack},
		{"candidate after its own stall, committed owner not written since: wait", func() view {
			v := with(cand, T, at(T), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 952)})
			v.blind = stalled
			return v
		}(), waitRelease},
		{"standby: the new owner never wrote after our release", with(standby, T, at(T), &lease.Beat{Highest: 1, Epoch: 1, T: at(T - 60), Released: 1}), takeBack},
		{"standby: someone newer than the watched owner holds it", with(standby, T, at(T), &lease.Beat{Highest: 4, Epoch: 4, T: at(T - 60)}), stay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.v); got != tt.want {
				t.Fatalf("decide = %d, want %d (view %+v)", got, tt.want, tt.v)
			}
		})
	}
}

func TestRecentCatchUp(t *testing.T) {
	r := NewRecent[int](4)
	for tick := int64(10); tick <= 20; tick++ {
		if tick != 18 { // the loop skipped tick 18
			r.Put(tick, int(tick)*10)
		}
	}
	var got []int
	step := func(s int) { got = append(got, s) }
	for _, c := range []struct {
		name string
		d    Decision
		tick int64
		want []int
	}{
		{"no hydrate", Decision{}, 21, nil},
		{"the previous tick's state: nothing to catch up", Decision{Hydrate: []byte("{}"), HydrateTick: 20}, 21, nil},
		{"three ticks behind, one skipped", Decision{Hydrate: []byte("{}"), HydrateTick: 16}, 21, []int{170, 190, 200}},
		{"further back than kept", Decision{Hydrate: []byte("{}"), HydrateTick: 5}, 21, []int{170, 190, 200}},
	} {
		got = nil
		r.CatchUp(c.d, c.tick, step)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: stepped %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBlind(t *testing.T) {
	const p = int64(1_000_000) // 1000 Hz
	var b blind
	for _, now := range []int64{10 * p, 11 * p, 12*p + p/2, 14 * p, 30 * p, 31 * p} {
		b.tick(now, p)
	}
	// 12.5 -> 14 is within two ticks; 14 -> 30 is a stall, blind from 15.
	for _, c := range []struct{ from, to, want int64 }{
		{0, 100 * p, 15 * p},
		{10 * p, 15 * p, 0},
		{20 * p, 25 * p, 5 * p},
		{29 * p, 40 * p, 1 * p},
	} {
		if got := b.within(c.from, c.to); got != c.want {
			t.Errorf("within(%d, %d) = %d, want %d", c.from, c.to, got, c.want)
		}
	}
	b.stop()
	b.tick(60*p, p) // the first tick after driving: no span
	if got := b.within(31*p, 60*p); got != 0 {
		t.Errorf("after stop: within = %d, want 0 (the instance drove meanwhile)", got)
	}
	for i := range int64(20) { // more stalls than it keeps: the oldest go
		b.tick(100*p+i*10*p, p)
	}
	if got, want := b.within(0, 1000*p), int64(len(b.spans))*9*p; got != want {
		t.Errorf("after 19 stalls: within = %d, want %d (the last %d)", got, want, len(b.spans))
	}
}
