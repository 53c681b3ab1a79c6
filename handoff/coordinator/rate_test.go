package coordinator

import (
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// TestMinWriteRate: the new owner must write half the loop's rate, or
// half of what the old owner managed as the candidate started where the
// machine held that lower. ci54 reverted a healthy 1000 Hz update at 465
// writes/s: the old owner had run about half its ticks too.
func TestMinWriteRate(t *testing.T) {
	ms := int64(time.Millisecond)
	cases := []struct {
		name    string
		period  int64
		ownerHz float64
		want    float64
	}{
		{"quiet 1000 Hz", ms, 998, 499},
		{"loaded 1000 Hz: the old owner ran half its ticks", ms, 480, 240},
		{"owner rate unknown", ms, 0, 500},
		{"owner counted above the loop's rate", ms, 1010, 500},
		{"quiet 250 Hz", 4 * ms, 250, 125},
		{"no period yet", 0, 480, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := minWriteRate(tc.period, tc.ownerHz); got != tc.want {
				t.Fatalf("minWriteRate(%d, %v) = %v, want %v", tc.period, tc.ownerHz, got, tc.want)
			}
		})
	}
}

// TestRateSince: a rate over less than RateWindow says nothing.
func TestRateSince(t *testing.T) {
	now := mono.Now()
	b0, b := lease.Beat{Writes: 100}, lease.Beat{Writes: 1100}
	if _, ok := rateSince(b0, now, b); ok {
		t.Fatal("a rate over no time was judged")
	}
	rate, ok := rateSince(b0, now-int64(2*time.Second), b)
	if !ok || rate < 490 || rate > 500 {
		t.Fatalf("1000 writes over 2 s: %v (ok %v), want about 500", rate, ok)
	}
}
