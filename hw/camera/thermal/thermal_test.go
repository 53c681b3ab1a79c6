package thermal_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/hw/camera/thermal"
)

const w, h = 80, 60

// scene is a cold background (~20 °C at the Lepton's ~0.025 K per count)
// with noise-like texture and a warm 20x20 block (a person) at x 50..69,
// y 20..39.
func scene() []uint16 {
	p := make([]uint16, w*h)
	for i := range p {
		x, y := i%w, i/w
		p[i] = uint16(7800 + (x*7+y*13)%40)
		if x >= 50 && x < 70 && y >= 20 && y < 40 {
			p[i] = uint16(8400 + (x+y)%20)
		}
	}
	return p
}

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// meanY is the mean luminance of the output rectangle r.
func meanY(img image.Image, r image.Rectangle) float64 {
	var sum float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sum += float64(color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y)
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

func TestAppend(t *testing.T) {
	cases := []struct {
		name    string
		comment string
		pix     []uint16
	}{
		{"scene", `{"count":123,"t":987654321,"instance":"flight-v2"}`, scene()},
		{"empty comment", "", scene()},
		{"uniform frame", "flat", make([]uint16, w*h)},
		{"longest comment", strings.Repeat("x", thermal.MaxComment), scene()},
		{"binary comment", "\xff\xd8\xff\xd9\x00", scene()},
	}
	var enc thermal.Encoder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := enc.Append(nil, tc.pix, w, h, tc.comment)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF, 0xFE}) {
				t.Fatalf("starts % x, want SOI then COM", b[:4])
			}
			img := decode(t, b)
			if got := img.Bounds(); got != image.Rect(0, 0, 160, 120) {
				t.Fatalf("decoded %v, want 160x120", got)
			}
			got, err := thermal.Comment(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.comment {
				t.Errorf("comment %q, want %q", trunc(got), trunc([]byte(tc.comment)))
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func TestWarmIsBrighter(t *testing.T) {
	var enc thermal.Encoder
	b, err := enc.Append(nil, scene(), w, h, "")
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, b)
	// Inside the warm block and the background, away from the edges where
	// JPEG blurs: output coordinates are twice the frame's.
	warm := meanY(img, image.Rect(104, 44, 136, 76))
	cold := meanY(img, image.Rect(8, 8, 80, 100))
	if warm < cold+100 {
		t.Errorf("warm block luminance %.0f, background %.0f: warm must read clearly brighter", warm, cold)
	}
	// A horizontal ramp comes out as a ramp of rising luminance.
	ramp := make([]uint16, w*h)
	for i := range ramp {
		ramp[i] = uint16(8000 + 5*(i%w))
	}
	img = decode(t, must(enc.Append(nil, ramp, w, h, "")))
	prev := -1.0
	for x := 0; x < 160; x += 16 {
		y := meanY(img, image.Rect(x, 40, x+16, 80))
		if y <= prev {
			t.Errorf("luminance falls along a rising ramp at x=%d: %.1f after %.1f", x, y, prev)
		}
		prev = y
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestPaletteLuminance(t *testing.T) {
	prev := uint8(0)
	for i := range 256 {
		c := thermal.Palette(uint8(i))
		y, _, _ := color.RGBToYCbCr(c.R, c.G, c.B)
		if y < prev {
			t.Fatalf("palette[%d] = %v has luminance %d, below palette[%d]'s %d", i, c, y, i-1, prev)
		}
		prev = y
	}
	if lo, hi := thermal.Palette(0), thermal.Palette(255); lo != (color.RGBA{0, 0, 0, 255}) || hi != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("palette runs %v..%v, want black..white", lo, hi)
	}
}

func TestAppendErrors(t *testing.T) {
	var enc thermal.Encoder
	dst := []byte("keep")
	for name, tc := range map[string]struct {
		pix     []uint16
		w, h    int
		comment string
	}{
		"short frame":      {make([]uint16, 10), w, h, ""},
		"zero size":        {nil, 0, 0, ""},
		"comment too long": {scene(), w, h, strings.Repeat("x", thermal.MaxComment+1)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := enc.Append(dst, tc.pix, tc.w, tc.h, tc.comment)
			if err == nil {
				t.Fatal("accepted")
			}
			if string(got) != "keep" {
				t.Errorf("dst changed to %q on error", trunc(got))
			}
		})
	}
}

func TestComment(t *testing.T) {
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	// An APP0 segment before the COM, and fill bytes before a marker.
	app0 := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J', 'F', 0xFF, 0xFF, 0xFE, 0x00, 0x04, 'h', 'i'}
	cases := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"after APP0", append(app0, plain.Bytes()[2:]...), "hi", nil},
		{"none", plain.Bytes(), "", thermal.ErrNoComment},
		{"not a JPEG", []byte("GIF89a"), "", errors.New("any")},
		{"empty", nil, "", errors.New("any")},
		{"truncated length", []byte{0xFF, 0xD8, 0xFF, 0xFE, 0x00}, "", errors.New("any")},
		{"overrun", []byte{0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x09, 'a'}, "", errors.New("any")},
		{"bad length", []byte{0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x01}, "", errors.New("any")},
		{"no marker", []byte{0xFF, 0xD8, 0x00}, "", errors.New("any")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := thermal.Comment(tc.in)
			switch {
			case tc.err == nil && err != nil:
				t.Fatal(err)
			case tc.err != nil && err == nil:
				t.Fatalf("got %q, want an error", got)
			case errors.Is(tc.err, thermal.ErrNoComment) && !errors.Is(err, thermal.ErrNoComment):
				t.Fatalf("err = %v, want ErrNoComment", err)
			}
			if string(got) != tc.want {
				t.Errorf("comment %q, want %q", got, tc.want)
			}
		})
	}
}

const meta = `{"count":123456,"t":1234567890123,"instance":"flight-v2"}`

// BenchmarkAppend is one 80x60 frame to a 160x120 JPEG into a reused buffer.
func BenchmarkAppend(b *testing.B) {
	var enc thermal.Encoder
	pix := scene()
	buf, err := enc.Append(nil, pix, w, h, meta)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = enc.Append(buf[:0], pix, w, h, meta); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "jpeg-bytes")
}

func BenchmarkComment(b *testing.B) {
	var enc thermal.Encoder
	buf := must(enc.Append(nil, scene(), w, h, meta))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := thermal.Comment(buf); err != nil {
			b.Fatal(err)
		}
	}
}
