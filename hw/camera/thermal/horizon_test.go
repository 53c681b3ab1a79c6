package thermal

import (
	"bytes"
	"image/jpeg"
	"math"
	"testing"
)

// TestHorizon paints frames with a known horizon line (cold sky above,
// warm ground below, a hot target low down), encodes and decodes them as
// the ground does, and finds the line again.
func TestHorizon(t *testing.T) {
	const w, h = 80, 60
	for _, tc := range []struct {
		angleDeg, row float64 // the painted line, in frame pixels
	}{{0, 15}, {5, 15}, {-8, 20}, {3, 40}, {0, 5}} {
		pix := make([]uint16, w*h)
		slope := math.Tan(tc.angleDeg * math.Pi / 180)
		for y := range h {
			for x := range w {
				v := uint16(7700)
				if float64(y)+0.5 > tc.row+slope*(float64(x)-float64(w-1)/2) {
					v = 8200
				}
				if y > 50 && x > 35 && x < 45 {
					v = 9800 // the target
				}
				pix[y*w+x] = v + uint16((x*7+y*13)%9) // noise
			}
		}
		var e Encoder
		b, err := e.Append(nil, pix, w, h, "")
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		angle, row, ok := Horizon(img)
		// Scale 2: rows double, angles stay.
		if !ok || math.Abs(angle-tc.angleDeg) > 1.5 || math.Abs(row/Scale-tc.row) > 1 {
			t.Errorf("painted %.1f° at row %.1f: found %.2f° at row %.2f (ok %v)", tc.angleDeg, tc.row, angle, row/Scale, ok)
		}
	}
	flat := make([]uint16, w*h)
	for i := range flat {
		flat[i] = 8000
	}
	var e Encoder
	b, _ := e.Append(nil, flat, w, h, "")
	img, _ := jpeg.Decode(bytes.NewReader(b))
	if _, _, ok := Horizon(img); ok {
		t.Error("a horizon in a flat frame")
	}
}

// TestHorizonLargeTarget: a warm target that fills a fifth of the frame
// (the simulated drone at 2 m over its 2 m target) is not the ground.
func TestHorizonLargeTarget(t *testing.T) {
	const w, h = 80, 60
	pix := make([]uint16, w*h)
	for y := range h {
		for x := range w {
			v := uint16(7700)
			if y >= 15 {
				v = 8200
			}
			if y >= 42 && y < 56 && x > 15 && x < 65 {
				v = 9800
			}
			pix[y*w+x] = v
		}
	}
	var e Encoder
	b, _ := e.Append(nil, pix, w, h, "")
	img, _ := jpeg.Decode(bytes.NewReader(b))
	angle, row, ok := Horizon(img)
	if !ok || math.Abs(angle) > 1 || math.Abs(row/Scale-15) > 1 {
		t.Fatalf("found %.2f° at row %.2f (ok %v), want level at 15", angle, row/Scale, ok)
	}
}
