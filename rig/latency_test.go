package rig

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/mono"
)

// TestProbeLoop: one wake-up 30 ms late is reported once, with when it was
// due, and the grid goes on after it without a report per skipped tick. A
// thread that came to its sleep late (its own process held it) reports
// nothing.
func TestProbeLoop(t *testing.T) {
	ms := int64(time.Millisecond)
	clock := 100*ms + ms/3
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	sleep := func(until int64) (before, after int64) {
		calls++
		if calls == 10 {
			clock += 5 * ms // held before its sleep
		}
		before = clock
		clock = max(clock, until)
		if calls == 5 {
			clock += 30 * ms // the machine took the CPU away
		}
		if calls == 20 {
			cancel()
		}
		return before, clock
	}
	var out bytes.Buffer
	if err := probeLoop(ctx, &out, sleep); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "104000000 30000000\n"; got != want {
		t.Errorf("reported %q, want %q", got, want)
	}
	if calls != 20 {
		t.Errorf("%d wake-ups, want 20", calls)
	}
}

// TestRawSleep: it sleeps until the time asked for, on CLOCK_MONOTONIC.
func TestRawSleep(t *testing.T) {
	now := mono.Now()
	until := now + 2*int64(time.Millisecond)
	before, after := rawSleep(until)
	if before < now || before > until {
		t.Errorf("before = %d, want in [%d, %d]", before, now, until)
	}
	if after < until {
		t.Errorf("woke at %d, %d ns early", after, until-after)
	}
	if b, a := rawSleep(now); a < b || b < until {
		t.Errorf("a sleep until a past time: %d, %d; want an immediate return after %d", b, a, until)
	}
}

func TestLatencyProbeMaxMs(t *testing.T) {
	// Two CPUs' threads: their reports come in about time order, not
	// exactly; lines that are not reports are skipped.
	p := LatencyProbe{done: make(chan struct{})}
	p.collect(strings.NewReader("2000 5000000\n1000 300000\nnot a line\n9000 1200000\n"))
	if len(p.stalls) != 3 || !slices.IsSortedFunc(p.stalls, func(a, b probeStall) int { return cmp.Compare(a.at, b.at) }) {
		t.Fatalf("collected %v, want the 3 stalls in time order", p.stalls)
	}
	for _, l := range []string{"not a line", "3000 x", "3000"} {
		if _, ok := parseStall(l); ok {
			t.Errorf("parseStall(%q) accepted", l)
		}
	}
	for _, tc := range []struct {
		from, to int64
		want     float64
	}{
		{0, 1000, 0},    // before the first
		{0, 1001, 0.3},  // the first alone
		{1500, 9000, 5}, // the worst of the window
		{2001, 20000, 1.2},
		{10000, 20000, 0}, // after the last
	} {
		if got := p.MaxMs(tc.from, tc.to); got != tc.want {
			t.Errorf("MaxMs(%d, %d) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	// The stalls cover [1000, 301000), [2000, 5002000) and [9000, 1209000).
	for _, tc := range []struct {
		from, to int64
		want     float64
	}{
		{0, 1000, 0},          // ends as the first begins
		{1000, 1500, 0.3},     // the first alone
		{400000, 500000, 5},   // inside the second and the third, both begun before
		{1300000, 6000000, 5}, // the second, after the third ended
		{5002000, 6000000, 0}, // after every one
	} {
		if got := p.DuringMs(tc.from, tc.to); got != tc.want {
			t.Errorf("DuringMs(%d, %d) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
