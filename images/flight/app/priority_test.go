package app

import (
	"errors"
	"log/slog"
	"slices"
	"testing"
)

// TestReprioritise: the control thread runs one priority below
// FLIGHT_RT_PRIO until it drives, is raised when it starts driving and
// lowered when it stops; without real-time scheduling nothing changes, and
// a refused change keeps the priority it had.
func TestReprioritise(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rt, now int // FLIGHT_RT_PRIO; the thread's priority at the start
		refuse  bool
		driving []bool
		want    []int // priorities asked for, in order
		end     int
	}{
		{"take over and hand over", 50, 49, false, []bool{false, false, true, true, false, false}, []int{50, 49}, 49},
		{"cold owner", 50, 49, false, []bool{true, true}, []int{50}, 50},
		{"take back", 50, 49, false, []bool{true, false, true}, []int{50, 49, 50}, 50},
		{"lowest priority", 1, 1, false, []bool{false, true, false}, nil, 1},
		{"no real-time", 50, 0, false, []bool{false, true, false}, nil, 0},
		{"refused", 50, 49, true, []bool{true}, []int{50}, 49},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []int
			l := &loop{cfg: Config{RTPriority: tc.rt}, log: slog.New(slog.DiscardHandler), prio: tc.now,
				setPriority: func(p int) error {
					asked = append(asked, p)
					if tc.refuse {
						return errors.New("refused")
					}
					return nil
				}}
			for _, d := range tc.driving {
				l.reprioritise(d)
			}
			if !slices.Equal(asked, tc.want) || l.prio != tc.end {
				t.Errorf("asked for %v, ended at %d; want %v, %d", asked, l.prio, tc.want, tc.end)
			}
		})
	}
}

// TestPriorities: the loop drives at FLIGHT_RT_PRIO and waits one below,
// the app's other threads run at the lowest real-time priority, and
// without FLIGHT_RT_PRIO nothing is real-time.
func TestPriorities(t *testing.T) {
	for _, tc := range []struct {
		rt, driving, waiting, helpers int
	}{
		{50, 50, 49, 1},
		{2, 2, 1, 1},
		{1, 1, 1, 1},
		{0, 0, 0, 0},
	} {
		c := Config{RTPriority: tc.rt}
		if d, w, h := c.priority(true), c.priority(false), c.helperPriority(); d != tc.driving || w != tc.waiting || h != tc.helpers {
			t.Errorf("FLIGHT_RT_PRIO=%d: driving %d, waiting %d, helpers %d; want %d %d %d", tc.rt, d, w, h, tc.driving, tc.waiting, tc.helpers)
		}
	}
}
