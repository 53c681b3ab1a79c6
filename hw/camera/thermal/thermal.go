// Package thermal turns raw thermal frames into false-colour JPEGs and reads
// back the metadata they carry.
//
// A frame is stretched between its own minimum and maximum, coloured with an
// ironbow-like palette whose luminance rises monotonically (black, violet,
// magenta, red, orange, yellow, white), so that warm reads as bright even in
// grey, upscaled 2x with nearest-neighbour (80x60 becomes 160x120) and
// encoded with image/jpeg. A JPEG comment (COM) segment right after SOI
// carries a caller-given text, e.g. {"count":123,"t":...,"instance":"v2"}:
// decoders ignore it, and Comment reads it back without decoding the image.
//
// The package depends on the standard library only, so the ground side can
// read frames without the drone's hardware packages. It takes pixels as a
// slice, as camera.Frame.Pix holds them.
package thermal

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
)

// Scale is the upscaling factor of Append.
const Scale = 2

// MaxComment is the longest comment a COM segment holds.
const MaxComment = 0xFFFF - 2

// ErrNoComment is returned by Comment for a JPEG without a COM segment
// before its image data.
var ErrNoComment = errors.New("thermal: JPEG has no comment")

// Encoder makes false-colour JPEGs. It keeps its image between calls, so an
// Encoder used for frames of one size allocates only what image/jpeg
// allocates per call. The zero value is ready to use. Not safe for
// concurrent use.
type Encoder struct {
	Quality int // JPEG quality 1..100; 0 = 85

	img  *image.RGBA
	opts jpeg.Options
	w    appendWriter
}

// Append appends to dst a JPEG of the width x height counts in pix
// (row-major), stretched to its own min..max, upscaled by Scale, with
// comment in a COM segment right after SOI, and returns the extended
// slice (on error, dst as given). A uniform frame is painted in the palette's middle colour. Pass a
// dst with spare capacity to encode without growing it; pass nil for a
// fresh slice (e.g. one handed to a publisher that keeps it).
func (e *Encoder) Append(dst []byte, pix []uint16, width, height int, comment string) ([]byte, error) {
	switch {
	case width <= 0 || height <= 0 || len(pix) != width*height:
		return dst, fmt.Errorf("thermal: %d pixels for %dx%d", len(pix), width, height)
	case len(comment) > MaxComment:
		return dst, fmt.Errorf("thermal: comment of %d bytes; a COM segment holds %d", len(comment), MaxComment)
	}
	e.paint(pix, width, height)
	start := len(dst)
	n := len(comment) + 2
	dst = append(dst, 0xFF, 0xD8, 0xFF, 0xFE, byte(n>>8), byte(n))
	dst = append(dst, comment...)
	e.opts.Quality = e.Quality
	if e.opts.Quality == 0 {
		e.opts.Quality = 85
	}
	e.w = appendWriter{b: dst, skip: 2} // image/jpeg's own SOI is already written
	err := jpeg.Encode(&e.w, e.img, &e.opts)
	dst, e.w.b = e.w.b, nil
	if err != nil {
		return dst[:start], fmt.Errorf("thermal: encode: %w", err)
	}
	return dst, nil
}

func (e *Encoder) paint(pix []uint16, width, height int) {
	r := image.Rect(0, 0, width*Scale, height*Scale)
	if e.img == nil || e.img.Rect != r {
		e.img = image.NewRGBA(r)
	}
	lo, hi := pix[0], pix[0]
	for _, v := range pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	span := uint32(hi - lo)
	stride := e.img.Stride
	for y := range height {
		row := e.img.Pix[y*Scale*stride:]
		for x, v := range pix[y*width : (y+1)*width] {
			i := uint8(128)
			if span > 0 {
				i = uint8((uint32(v-lo)*255 + span/2) / span)
			}
			c := palette[i]
			for k := range Scale {
				o := (x*Scale + k) * 4
				row[o], row[o+1], row[o+2], row[o+3] = c.R, c.G, c.B, 0xFF
			}
		}
		for k := 1; k < Scale; k++ {
			copy(e.img.Pix[(y*Scale+k)*stride:][:width*Scale*4], row[:width*Scale*4])
		}
	}
}

// appendWriter is the writer image/jpeg uses as is (it has Flush and
// WriteByte, so Encode adds no bufio.Writer): it appends to b, dropping the
// first skip bytes.
type appendWriter struct {
	b    []byte
	skip int
}

func (w *appendWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.skip > 0 {
		k := min(w.skip, len(p))
		p, w.skip = p[k:], w.skip-k
	}
	w.b = append(w.b, p...)
	return n, nil
}

func (w *appendWriter) WriteByte(c byte) error {
	if w.skip > 0 {
		w.skip--
		return nil
	}
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) Flush() error { return nil }

// Comment returns the text of the first COM segment of a JPEG, looking only
// at the segments before the image data. The result aliases b: it costs no
// allocation, and is valid while b is. It returns ErrNoComment if there is
// none, and another error if b is not a well-formed JPEG up to that point.
func Comment(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, errors.New("thermal: not a JPEG (no SOI)")
	}
	i := 2
	for {
		if i >= len(b) || b[i] != 0xFF {
			return nil, fmt.Errorf("thermal: JPEG has no marker at byte %d", i)
		}
		for i < len(b) && b[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(b) {
			return nil, errors.New("thermal: JPEG truncated in a marker")
		}
		m := b[i]
		i++
		switch {
		case m == 0xDA || m == 0xD9: // SOS, EOI: no comment before the image
			return nil, ErrNoComment
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // TEM, RSTn: no length
			continue
		}
		if i+2 > len(b) {
			return nil, errors.New("thermal: JPEG truncated in a segment length")
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 || i+n > len(b) {
			return nil, fmt.Errorf("thermal: JPEG segment %#02x of length %d overruns the data", m, n)
		}
		if m == 0xFE {
			return b[i+2 : i+n], nil
		}
		i += n
	}
}

// palette maps 0 (coldest) .. 255 (warmest) to an ironbow-like ramp. The
// control points rise in luminance (Y = 0.299R + 0.587G + 0.114B: 0, 26,
// 62, 101, 163, 210, 255) and the ramp is linear between them in RGB, where
// Y is linear too, so luminance never falls along the palette.
var palette = func() (p [256]color.RGBA) {
	stops := []struct {
		at      float64
		r, g, b float64
	}{
		{0.00, 0, 0, 0},
		{0.15, 32, 0, 140},
		{0.35, 145, 0, 160},
		{0.55, 225, 50, 40},
		{0.75, 250, 150, 0},
		{0.90, 255, 220, 40},
		{1.00, 255, 255, 255},
	}
	for i := range p {
		t := float64(i) / 255
		k := 1
		for k < len(stops)-1 && t > stops[k].at {
			k++
		}
		a, b := stops[k-1], stops[k]
		f := (t - a.at) / (b.at - a.at)
		lerp := func(x, y float64) uint8 { return uint8(x + (y-x)*f + 0.5) }
		p[i] = color.RGBA{lerp(a.r, b.r), lerp(a.g, b.g), lerp(a.b, b.b), 0xFF}
	}
	return p
}()

// Palette returns the colour of palette index i (0 coldest, 255 warmest).
func Palette(i uint8) color.RGBA { return palette[i] }
