package chips

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"
)

// dsCal is the trimming as a driver parses it from calib00..calib23.
type dsCal struct {
	T1                             uint16
	T2, T3                         int16
	P1                             uint16
	P2, P3, P4, P5, P6, P7, P8, P9 int16
}

// readCal reads and parses the trimming registers.
func readCal(t *testing.T, b *BMP280) dsCal {
	t.Helper()
	var raw [24]byte
	mustTx(t, b, []byte{BMP280Calib00}, raw[:])
	u := func(i int) uint16 { return binary.LittleEndian.Uint16(raw[2*i:]) }
	s := func(i int) int16 { return int16(u(i)) }
	return dsCal{u(0), s(1), s(2), u(3), s(4), s(5), s(6), s(7), s(8), s(9), s(10), s(11)}
}

// compensate is the datasheet's reference code (section 8.2): the 32-bit
// temperature and the 64-bit pressure compensation, written out again
// independently of the model.
func (c dsCal) compensate(adcT, adcP int32) (tempC, pressurePa float64) {
	var1 := (((adcT >> 3) - (int32(c.T1) << 1)) * int32(c.T2)) >> 11
	var2 := (((((adcT >> 4) - int32(c.T1)) * ((adcT >> 4) - int32(c.T1))) >> 12) * int32(c.T3)) >> 14
	tFine := var1 + var2
	t := (tFine*5 + 128) >> 8

	v1 := int64(tFine) - 128000
	v2 := v1 * v1 * int64(c.P6)
	v2 = v2 + ((v1 * int64(c.P5)) << 17)
	v2 = v2 + (int64(c.P4) << 35)
	v1 = ((v1 * v1 * int64(c.P3)) >> 8) + ((v1 * int64(c.P2)) << 12)
	v1 = (((int64(1) << 47) + v1) * int64(c.P1)) >> 33
	if v1 == 0 {
		return float64(t) / 100, 0
	}
	p := 1048576 - int64(adcP)
	p = (((p << 31) - v2) * 3125) / v1
	v1 = (int64(c.P9) * (p >> 13) * (p >> 13)) >> 25
	v2 = (int64(c.P8) * p) >> 19
	p = ((p + v1 + v2) >> 8) + (int64(c.P7) << 4)
	return float64(t) / 100, float64(uint32(p)) / 256
}

// readRaw burst-reads press_msb..temp_xlsb.
func readRaw(t *testing.T, b *BMP280) (rawT, rawP int32) {
	t.Helper()
	var d [6]byte
	mustTx(t, b, []byte{BMP280PressMSB}, d[:])
	p := int32(d[0])<<12 | int32(d[1])<<4 | int32(d[2])>>4
	tt := int32(d[3])<<12 | int32(d[4])<<4 | int32(d[5])>>4
	return tt, p
}

func TestBMP280PowerOn(t *testing.T) {
	_, now := newFakeClock()
	b := NewBMP280(now)
	for _, tc := range []struct {
		reg, want byte
	}{
		{BMP280ID, 0x58},
		{BMP280CtrlMeas, 0},
		{BMP280Config, 0},
		{BMP280Reset, 0},
		{0xF7, 0x80}, {0xF8, 0}, {0xF9, 0}, {0xFA, 0x80}, {0xFB, 0}, {0xFC, 0},
		{0xA0, 0}, {0xA1, 0},
	} {
		if got := readReg(t, b, tc.reg); got != tc.want {
			t.Errorf("reg %#02x = %#02x, want %#02x", tc.reg, got, tc.want)
		}
	}
	want := dsCal{27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000}
	if got := readCal(t, b); got != want {
		t.Errorf("calibration = %+v, want %+v", got, want)
	}
	if got := readReg(t, b, 0x88); got != 0x70 { // 27504 = 0x6B70, little-endian
		t.Errorf("calib00 = %#02x, want 0x70", got)
	}
}

func TestBMP280RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pa, c        float64
		osrsT, osrsP byte
		tolPa        float64
	}{
		{101325, 25, 5, 5, 1},
		{101325, 15, 3, 3, 1},
		{100000, 21.37, 2, 2, 1},
		{95000, -10, 1, 5, 1},
		{89874.6, 40.5, 5, 4, 1},
		{50000, 0, 2, 3, 1},
		{108000, 60, 1, 1, 1.5}, // x1: 16-bit pressure, 2.6 Pa steps
	} {
		t.Run(fmt.Sprintf("%gPa %g°C osrs %d/%d", tc.pa, tc.c, tc.osrsT, tc.osrsP), func(t *testing.T) {
			_, now := newFakeClock()
			b := NewBMP280(now)
			b.Sense(tc.pa, tc.c)
			mustTx(t, b, []byte{BMP280CtrlMeas, tc.osrsT<<5 | tc.osrsP<<2 | BMP280ModeForced}, nil)
			rawT, rawP := readRaw(t, b)
			gotC, gotPa := readCal(t, b).compensate(rawT, rawP)
			if math.Abs(gotC-tc.c) > 0.01+1e-9 {
				t.Errorf("temperature = %.2f °C, want %.2f", gotC, tc.c)
			}
			if math.Abs(gotPa-tc.pa) > tc.tolPa {
				t.Errorf("pressure = %.3f Pa, want %.1f ± %.1f", gotPa, tc.pa, tc.tolPa)
			}
			if step := bmp280Step(tc.osrsP); rawP%step != 0 {
				t.Errorf("raw pressure %#x has more resolution than osrs_p %d", rawP, tc.osrsP)
			}
		})
	}
}

func TestBMP280Modes(t *testing.T) {
	const osrs = 5<<5 | 5<<2
	_, now := newFakeClock()
	b := NewBMP280(now)
	pressure := func() float64 {
		rawT, rawP := readRaw(t, b)
		_, p := readCal(t, b).compensate(rawT, rawP)
		return math.Round(p)
	}
	steps := []struct {
		name     string
		sense    float64
		w        []byte
		want     float64
		wantCtrl byte
	}{
		{"sleep holds the reset value", 90000, nil, 0, 0}, // 0x80000 is outside the range
		{"forced measures", 90000, []byte{BMP280CtrlMeas, osrs | 1}, 90000, osrs},
		{"then sleeps and holds", 91000, nil, 90000, osrs},
		{"forced with 0b10", 92000, []byte{BMP280CtrlMeas, osrs | 2}, 92000, osrs},
		{"normal follows", 93000, []byte{BMP280CtrlMeas, osrs | 3}, 93000, osrs | 3},
		{"normal follows on", 94000, nil, 94000, osrs | 3},
		{"back to sleep", 94000, []byte{BMP280CtrlMeas, osrs}, 94000, osrs},
		{"sleep keeps the last sample", 95000, nil, 94000, osrs},
	}
	for i, s := range steps {
		b.Sense(s.sense, 20)
		if s.w != nil {
			mustTx(t, b, s.w, nil)
		}
		if i == 0 {
			if rawT, rawP := readRaw(t, b); rawT != 0x80000 || rawP != 0x80000 {
				t.Errorf("%s: raw = %#x %#x, want 0x80000", s.name, rawT, rawP)
			}
		} else if got := pressure(); got != s.want {
			t.Errorf("%s: pressure = %g, want %g", s.name, got, s.want)
		}
		if got := readReg(t, b, BMP280CtrlMeas); got != s.wantCtrl {
			t.Errorf("%s: ctrl_meas = %#02x, want %#02x", s.name, got, s.wantCtrl)
		}
		if got := readReg(t, b, BMP280Status); got&0x08 != 0 {
			t.Errorf("%s: status.measuring set", s.name)
		}
	}
}

func TestBMP280Skipped(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ctrl         byte
		wantT, wantP bool // measured
	}{
		{"both", 1<<5 | 1<<2 | 1, true, true},
		{"pressure skipped", 1<<5 | 1, true, false},
		{"temperature skipped", 1<<2 | 1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, now := newFakeClock()
			b := NewBMP280(now)
			mustTx(t, b, []byte{BMP280CtrlMeas, tc.ctrl}, nil)
			rawT, rawP := readRaw(t, b)
			if got := rawT != 0x80000; got != tc.wantT {
				t.Errorf("raw T = %#x, measured=%v want %v", rawT, got, tc.wantT)
			}
			if got := rawP != 0x80000; got != tc.wantP {
				t.Errorf("raw P = %#x, measured=%v want %v", rawP, got, tc.wantP)
			}
		})
	}
}

func TestBMP280SoftReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		word  byte
		reset bool
	}{
		{"0xB6 resets", 0xB6, true},
		{"other values are ignored", 0xB5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk, now := newFakeClock()
			b := NewBMP280(now)
			clk.Advance(BMP280Startup)
			// Register/data pairs in one transaction.
			mustTx(t, b, []byte{BMP280Config, 0xA8, BMP280CtrlMeas, 0x57}, nil)
			mustTx(t, b, []byte{BMP280Reset, tc.word}, nil)
			want := [3]byte{0x57, 0xA8, 0} // ctrl_meas, config, im_update
			if tc.reset {
				want = [3]byte{0, 0, 1}
			}
			got := [3]byte{readReg(t, b, BMP280CtrlMeas), readReg(t, b, BMP280Config), readReg(t, b, BMP280Status)}
			if got != want {
				t.Errorf("ctrl_meas, config, status = % x, want % x", got, want)
			}
			if rawT, _ := readRaw(t, b); (rawT == 0x80000) != tc.reset {
				t.Errorf("raw T = %#x, reset=%v", rawT, tc.reset)
			}
			clk.Advance(BMP280Startup)
			if got := readReg(t, b, BMP280Status); got != 0 {
				t.Errorf("status %v after reset = %#02x, want 0", BMP280Startup, got)
			}
		})
	}
}

func TestBMP280ConfigIgnoredInNormalMode(t *testing.T) {
	_, now := newFakeClock()
	b := NewBMP280(now)
	mustTx(t, b, []byte{BMP280Config, 0x10, BMP280CtrlMeas, 0x27}, nil)
	mustTx(t, b, []byte{BMP280Config, 0xFC}, nil)
	if got := readReg(t, b, BMP280Config); got != 0x10 {
		t.Errorf("config = %#02x, want 0x10 (write in normal mode ignored)", got)
	}
}

func TestBMP280NACK(t *testing.T) {
	testNACK(t, func() Device {
		_, now := newFakeClock()
		return NewBMP280(now)
	}, []nackCase{
		{"empty", nil, 0},
		{"read without pointer", nil, 3},
		{"reserved 0x00", []byte{0x00}, 1},
		{"reserved 0xD1", []byte{0xD1}, 1},
		{"reserved 0xFD", []byte{0xFD}, 2},
		{"write chip id", []byte{BMP280ID, 0x60}, 0},
		{"write calibration", []byte{BMP280Calib00, 0}, 0},
		{"write data", []byte{BMP280PressMSB, 0}, 0},
		{"write status", []byte{BMP280Status, 0}, 0},
		{"second pair reserved", []byte{BMP280CtrlMeas, 0, 0x10, 0}, 0},
	})
}

func BenchmarkBMP280Sense(b *testing.B) {
	_, now := newFakeClock()
	c := NewBMP280(now)
	if err := c.Tx([]byte{BMP280CtrlMeas, 0xB7}, nil); err != nil {
		b.Fatal(err)
	}
	var r [6]byte
	for i := 0; b.Loop(); i++ {
		c.Sense(101325-float64(i%1000)/100, 20)
		_ = c.Tx([]byte{BMP280PressMSB}, r[:])
	}
}

func FuzzBMP280Tx(f *testing.F) {
	f.Add([]byte{0x02, BMP280CtrlMeas, 0xB7, 0x31, BMP280PressMSB})
	f.Add([]byte{0x02, BMP280Reset, 0xB6, 0xD1, BMP280Calib00})
	f.Add([]byte{0x05, BMP280Config, 0xFF, BMP280CtrlMeas, 0xFF, 0xFC, 0xF9, 0xFF})
	f.Add([]byte{0x03, 0xD0, 0x58, 0xE0})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk, now := newFakeClock()
		b := NewBMP280(now)
		fuzzTx(t, b, data, func() {
			clk.Advance(time.Millisecond)
			b.Sense(float64(len(data))*1e4-3e5, float64(len(data))-100)
		})
	})
}
