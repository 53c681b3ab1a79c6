package thermal

import (
	"image"
	"image/color"
	"math"
	"slices"
)

// Horizon finds the horizon in a false-colour frame (as Append makes it,
// decoded) of a camera that sees cold sky above warmer ground: in each
// column it takes the first pixel from the top brighter than halfway
// between the sky (the top row) and the ground (the bottom half, where a
// warm target is a minority), and fits a line through those points. It returns the line's angle in degrees (positive when it
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
	thr, ok := skyGround(lum, w, h)
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

// skyGround returns the luminance halfway between the sky's (the median of
// the top row) and the ground's (the median of the bottom half, where a
// warm target is a minority): the threshold between them.
func skyGround(lum []float64, w, h int) (float64, bool) {
	sky := median(lum[:w])
	ground := median(lum[w*(h/2):])
	if ground-sky < 16 {
		return 0, false // no sky at the top, or a flat frame
	}
	return (sky + ground) / 2, true
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
