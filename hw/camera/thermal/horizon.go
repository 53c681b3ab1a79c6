package thermal

import (
	"image"
	"image/color"
	"math"
	"slices"
)

// Horizon finds the horizon in a false-colour frame (as Append makes it,
// decoded) of a camera that sees cold sky above warmer ground: in each
// column it takes the first pixel from the top brighter than the threshold
// between sky and ground (Otsu's, with the hottest 5% clipped so a warm
// target does not pass for the ground), and fits a line through those
// points. It returns the line's angle in degrees (positive when it
// falls to the right, in image coordinates: y grows downwards) and its row
// at the image's centre column, in the image's pixels. ok is false when
// too few columns have a horizon (sky only, ground only, or a flat image).
func Horizon(img image.Image) (angleDeg, centreRow float64, ok bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 4 || h < 4 {
		return 0, 0, false
	}
	lum := make([]float64, w*h)
	for y := range h {
		for x := range w {
			lum[y*w+x] = float64(color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y)
		}
	}
	thr, ok := skyGround(lum)
	if !ok {
		return 0, 0, false
	}
	var xs, ys []float64
	for x := range w {
		if lum[x] > thr {
			continue // no sky at the top of this column
		}
		for y := 1; y < h; y++ {
			a, c := lum[(y-1)*w+x], lum[y*w+x]
			if c > thr {
				// Sub-pixel: where the profile crosses the threshold.
				xs = append(xs, float64(x))
				ys = append(ys, float64(y-1)+(thr-a)/(c-a)+0.5)
				break
			}
		}
	}
	if len(xs) < w/2 {
		return 0, 0, false
	}
	// Least squares: y = a + s*x.
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	n := float64(len(xs))
	s := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a := (sy - s*sx) / n
	cx := float64(w-1) / 2
	return math.Atan(s) * 180 / math.Pi, a + s*cx, true
}

// skyGround returns the luminance that best separates the two classes of
// lum (Otsu's method on 256 levels), after clipping the hottest 5%.
func skyGround(lum []float64) (float64, bool) {
	sorted := slices.Clone(lum)
	slices.Sort(sorted)
	clip := sorted[len(sorted)*95/100]
	if clip-sorted[0] < 16 {
		return 0, false // flat
	}
	var hist [256]float64
	for _, v := range lum {
		hist[int(min(v, clip))]++
	}
	n := float64(len(lum))
	var total float64
	for i, c := range hist {
		total += float64(i) * c
	}
	var w0, sum0, best, thr float64
	for i, c := range hist {
		w0 += c
		sum0 += float64(i) * c
		w1 := n - w0
		if w0 == 0 || w1 == 0 {
			continue
		}
		m0, m1 := sum0/w0, (total-sum0)/w1
		if v := w0 * w1 * (m0 - m1) * (m0 - m1); v > best {
			best, thr = v, float64(i)+0.5
		}
	}
	return thr, best > 0
}
