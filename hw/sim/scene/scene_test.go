package scene

import (
	"math"
	"testing"

	"github.com/skyswap/skyswap/hw/sim/physics"
)

const deg = math.Pi / 180

func render(s *Scene, roll, pitch, yaw float64, pos [3]float64, frame uint32) []uint16 {
	pix := make([]uint16, Width*Height)
	s.Render(Pose{Att: physics.FromEuler(roll*deg, pitch*deg, yaw*deg), Pos: pos}, frame, pix)
	return pix
}

// groundFrom returns the first row of column col that is not sky, or
// Height if the column is all sky.
func groundFrom(pix []uint16, col int) int {
	for row := range Height {
		if pix[row*Width+col] > (Sky+Ground)/2 {
			return row
		}
	}
	return Height
}

// wantGroundFrom is the package doc's horizon, y(x), as the first row whose
// centre lies below it.
func wantGroundFrom(col int, roll, pitch float64) int {
	x := float64(col) + 0.5 - Width/2
	t := MountTiltDeg * deg
	var y float64
	switch {
	case roll != 0 && pitch != 0:
		panic("the doc gives the horizon for roll or pitch alone")
	case roll != 0:
		y = Height/2 - Focal*math.Tan(t) - x*math.Tan(roll*deg)/math.Cos(t)
	default:
		y = Height/2 - Focal*math.Tan(t+pitch*deg)
	}
	r := int(math.Floor(y-0.5)) + 1
	return min(max(r, 0), Height)
}

// TestHorizon pins the documented convention: level, the horizon is row
// 15; positive roll (left side up) puts it lower on the left than on the
// right; positive pitch (nose down) raises it; yaw leaves it alone.
func TestHorizon(t *testing.T) {
	s := New(Config{})
	level := render(s, 0, 0, 0, [3]float64{0, 0, 2}, 1)
	for col := range Width {
		if got := groundFrom(level, col); got != 15 {
			t.Fatalf("level: column %d turns to ground at row %d, want 15", col, got)
		}
	}
	for _, tc := range []struct {
		name             string
		roll, pitch, yaw float64
		check            func(t *testing.T, left, centre, right int)
	}{
		{"yaw 30", 0, 0, 30, func(t *testing.T, l, c, r int) {
			if l != 15 || c != 15 || r != 15 {
				t.Fatal("yaw moved the horizon")
			}
		}},
		{"roll +10 left side up", 10, 0, 0, func(t *testing.T, l, c, r int) {
			if !(l > c && c > r) {
				t.Fatal("want the horizon low on the left, high on the right")
			}
		}},
		{"roll -10 right side up", -10, 0, 0, func(t *testing.T, l, c, r int) {
			if !(l < c && c < r) {
				t.Fatal("want the horizon high on the left, low on the right")
			}
		}},
		{"roll +30", 30, 0, 0, func(t *testing.T, l, c, r int) {
			// tan 30° / cos 10° × 40 columns ≈ 23 rows from the left edge
			// to the centre (the right half leaves the top).
			if l-c < 22 || l-c > 25 || r != 0 {
				t.Fatal("a 30° roll should drop the horizon about 23 rows from the centre to the left edge")
			}
		}},
		{"pitch +5 nose down", 0, 5, 0, func(t *testing.T, l, c, r int) {
			if c >= 15 || l != r {
				t.Fatal("want the horizon level and higher than row 15")
			}
		}},
		{"pitch -5 nose up", 0, -5, 0, func(t *testing.T, l, c, r int) {
			if c <= 15 || l != r {
				t.Fatal("want the horizon level and lower than row 15")
			}
		}},
		{"pitch +12 all ground", 0, 12, 0, func(t *testing.T, l, c, r int) {
			if c != 0 {
				t.Fatal("want no sky")
			}
		}},
		{"pitch -35 all sky", 0, -35, 0, func(t *testing.T, l, c, r int) {
			if c != Height {
				t.Fatal("want no ground")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pix := render(s, tc.roll, tc.pitch, tc.yaw, [3]float64{0, 0, 2}, 1)
			rows := make([]int, Width)
			for col := range Width {
				rows[col] = groundFrom(pix, col)
				if tc.yaw == 0 {
					if want := wantGroundFrom(col, tc.roll, tc.pitch); rows[col] != want {
						t.Fatalf("column %d turns to ground at row %d, the doc's formula says %d", col, rows[col], want)
					}
				}
			}
			defer func() {
				if t.Failed() {
					t.Logf("ground starts at rows %v", rows)
				}
			}()
			tc.check(t, rows[0], rows[Width/2], rows[Width-1])
		})
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		pos     [3]float64
		yaw     float64
		visible bool
	}{
		{"hover over take-off", Config{}, [3]float64{0, 0, 2}, 0, true},
		{"turned away", Config{}, [3]float64{0, 0, 2}, 90, false},
		{"past it", Config{}, [3]float64{7, 0, 2}, 0, false},
		{"take-off elsewhere facing west", Config{TakeOff: [2]float64{10, -3}, Heading: 90 * deg}, [3]float64{10, -3, 2}, 90, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.cfg)
			pix := render(s, 0, 0, tc.yaw, tc.pos, 1)
			minRow, maxRow, minCol, maxCol, n := Height, -1, Width, -1, 0
			for i, v := range pix {
				if v > (Ground+Target)/2 {
					n++
					row, col := i/Width, i%Width
					minRow, maxRow = min(minRow, row), max(maxRow, row)
					minCol, maxCol = min(minCol, col), max(maxCol, col)
				}
			}
			if !tc.visible {
				if n != 0 {
					t.Fatalf("%d target pixels, want none", n)
				}
				return
			}
			// From 2.05 m the square spans 4..6 m ahead: 8.9° to 17.1°
			// below the image centre, rows 43..55, centred left to right.
			if minRow != 43 || maxRow != 55 || minCol+maxCol != Width-1 {
				t.Fatalf("target at rows %d..%d, columns %d..%d; want rows 43..55, centred", minRow, maxRow, minCol, maxCol)
			}
		})
	}
}

func TestTemperatures(t *testing.T) {
	s := New(Config{Seed: 7})
	pix := render(s, 0, 0, 0, [3]float64{0, 0, 2}, 1)
	mean := func(row, c0, c1 int) float64 {
		var sum float64
		for col := c0; col < c1; col++ {
			sum += float64(pix[row*Width+col])
		}
		return sum / float64(c1-c0)
	}
	sky, farGround, nearGround := mean(0, 0, Width), mean(16, 0, Width), mean(Height-1, 0, 10)
	if math.Abs(sky-7650) > 60 || sky >= farGround || farGround >= nearGround || math.Abs(farGround-Ground) > 30 {
		t.Fatalf("sky %.0f, far ground %.0f, near ground %.0f counts: want cold sky, ground ~%d warmer nearer", sky, farGround, nearGround, Ground)
	}
	again := render(s, 0, 0, 0, [3]float64{0, 0, 2}, 1)
	next := render(s, 0, 0, 0, [3]float64{0, 0, 2}, 2)
	same, differ := true, 0
	for i := range pix {
		same = same && pix[i] == again[i]
		if pix[i] != next[i] {
			differ++
		}
	}
	if !same || differ < len(pix)/2 {
		t.Fatalf("noise: same frame identical %v, %d pixels differ in the next frame", same, differ)
	}
	// The noise of the sky's first row around its (smooth) mean.
	var v float64
	for col := range Width {
		d := float64(pix[col]) - sky
		v += d * d
	}
	if sd := math.Sqrt(v / Width); sd < 1.5 || sd > 6 {
		t.Fatalf("noise std dev %.1f counts, want about %v", sd, NoiseCounts)
	}
}

func BenchmarkRender(b *testing.B) {
	s := New(Config{})
	pix := make([]uint16, Width*Height)
	p := Pose{Att: physics.FromEuler(0.05, 0.02, 0.3), Pos: [3]float64{0, 0, 2}}
	for b.Loop() {
		s.Render(p, 1, pix)
	}
}

// TestHorizonFormula checks Horizon against rendered frames: the boundary
// between sky and ground pixels lies on the line it gives.
func TestHorizonFormula(t *testing.T) {
	s := New(Config{})
	for _, tc := range []struct{ roll, pitch float64 }{{0, 0}, {5, 0}, {-5, 0}, {0, 3}, {0, -4}, {3, 2}} {
		angle, cy := Horizon(tc.roll, tc.pitch)
		att := physics.FromEuler(tc.roll*math.Pi/180, tc.pitch*math.Pi/180, 0)
		pix := make([]uint16, Width*Height)
		s.Render(Pose{Att: att, Pos: [3]float64{0, 0, 2}}, 1, pix)
		slope := math.Tan(angle * math.Pi / 180)
		bad := 0
		for col := range Width {
			y := cy + slope*(float64(col)+0.5-Width/2)
			for row := range Height {
				centre := float64(row) + 0.5
				if math.Abs(centre-y) < 1 {
					continue // on the line: either
				}
				sky := pix[row*Width+col] < (Sky+Ground)/2
				if sky != (centre < y) {
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("roll %.0f° pitch %.0f°: %d pixels on the wrong side of the line at %.2f°, y %.2f", tc.roll, tc.pitch, bad, angle, cy)
		}
	}
}
