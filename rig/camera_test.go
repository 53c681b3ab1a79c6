package rig

import (
	"testing"

	"github.com/skyswap/skyswap/hw/sim/referee"
)

func TestLostImages(t *testing.T) {
	fr := func(ims ...uint32) []referee.CameraFrame {
		var out []referee.CameraFrame
		for _, im := range ims {
			out = append(out, referee.CameraFrame{Image: im})
		}
		return out
	}
	for _, tc := range []struct {
		frames []referee.CameraFrame
		want   int
	}{
		{nil, 0},
		{fr(30), 0},
		{fr(30, 30, 30, 33, 33, 36), 0}, // repeats are not new images
		{fr(30, 36), 1},
		{fr(30, 33, 42, 45), 2},
	} {
		if got := lostImages(tc.frames); got != tc.want {
			t.Errorf("lostImages(%v) = %d, want %d", tc.frames, got, tc.want)
		}
	}
}
