package mono

import "testing"

func TestNowIsMonotonic(t *testing.T) {
	a := Now()
	b := Now()
	if b < a {
		t.Fatalf("Now went backwards: %d then %d", a, b)
	}
}

func TestSleepUntil(t *testing.T) {
	start := Now()
	target := start + 2_000_000 // 2 ms
	SleepUntil(target)
	if got := Now(); got < target {
		t.Fatalf("woke at %d, before the target %d", got, target)
	}
	// A deadline in the past returns at once (bounded generously).
	before := Now()
	SleepUntil(start)
	if d := Since(before); d > 1e9 {
		t.Fatalf("SleepUntil(past) took %v", d)
	}
}
