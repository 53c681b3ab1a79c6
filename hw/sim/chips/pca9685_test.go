package chips

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// runningPCA returns a PCA9685 awake with AI set, the given prescale and a
// stable oscillator.
func runningPCA(t *testing.T, prescale byte) (*PCA9685, *fakeClock) {
	t.Helper()
	clk, now := newFakeClock()
	p := NewPCA9685(now)
	mustTx(t, p, []byte{PCA9685Mode1, PCA9685AI | PCA9685Sleep | PCA9685AllCall}, nil)
	mustTx(t, p, []byte{PCA9685Prescale, prescale}, nil)
	mustTx(t, p, []byte{PCA9685Mode1, PCA9685AI | PCA9685AllCall}, nil)
	clk.Advance(PCA9685OscStartup)
	return p, clk
}

// setCounts writes ON/OFF counts of channel ch (AI must be set).
func setCounts(t *testing.T, p *PCA9685, ch int, on, off uint16) {
	t.Helper()
	mustTx(t, p, []byte{PCA9685LED0OnL + byte(4*ch), byte(on), byte(on >> 8), byte(off), byte(off >> 8)}, nil)
}

// countsFor returns the OFF count of a pulse of width w starting at count 0.
func countsFor(w time.Duration, prescale byte) uint16 {
	tick := float64(int(prescale)+1) * 40
	return uint16(math.Round(float64(w) / tick))
}

func TestPCA9685PowerOn(t *testing.T) {
	_, now := newFakeClock()
	p := NewPCA9685(now)
	for _, tc := range []struct {
		reg, want byte
	}{
		{PCA9685Mode1, 0x11}, {PCA9685Mode2, 0x04},
		{PCA9685SubAdr1, 0xE2}, {PCA9685SubAdr2, 0xE4}, {PCA9685SubAdr3, 0xE8},
		{PCA9685AllCallAdr, 0xE0},
		{0x06, 0}, {0x07, 0}, {0x08, 0}, {0x09, 0x10}, // LED0
		{0x42, 0}, {0x43, 0}, {0x44, 0}, {0x45, 0x10}, // LED15
		{0xFA, 0}, {0xFB, 0}, {0xFC, 0}, {0xFD, 0},
		{PCA9685Prescale, 0x1E},
	} {
		if got := readReg(t, p, tc.reg); got != tc.want {
			t.Errorf("reg %#02x = %#02x, want %#02x", tc.reg, got, tc.want)
		}
	}
	for ch, c := range p.Channels(16) {
		if c != (PCA9685Channel{FullOff: true}) {
			t.Errorf("channel %d = %+v, want full off", ch, c)
		}
		if pu := p.Pulse(ch); pu.Present {
			t.Errorf("Pulse(%d) = %+v, want none", ch, pu)
		}
	}
}

func TestPCA9685AutoIncrement(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ai    bool
		w     []byte
		start byte
		want  []byte
	}{
		{"AI clear: burst write lands in one register", false, []byte{0x06, 1, 2, 3, 4}, 0x06, []byte{4, 0, 0, 0x10}},
		{"AI set: burst write fills the channel", true, []byte{0x06, 1, 2, 3, 4}, 0x06, []byte{1, 2, 3, 4}},
		{"AI set: reserved bits of _H registers read 0", true, []byte{0x06, 0xFF, 0xFF, 0xFF, 0xFF}, 0x06, []byte{0xFF, 0x1F, 0xFF, 0x1F}},
		{"AI set: LED15_OFF_H rolls over to MODE1", true, []byte{0x44, 7}, 0x44, []byte{7, 0x10, 0x31, 0x04}},
		{"AI set: PRE_SCALE rolls over to MODE1", true, []byte{0xFE, 0x20}, 0xFA, []byte{0, 0, 0, 0, 0x20, 0x31}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, now := newFakeClock()
			p := NewPCA9685(now)
			if tc.ai {
				mustTx(t, p, []byte{PCA9685Mode1, 0x31}, nil)
			}
			mustTx(t, p, tc.w, nil)
			if !tc.ai {
				// Without AI a burst read repeats the register.
				r := make([]byte, 3)
				mustTx(t, p, []byte{tc.start}, r)
				for i, b := range r {
					if b != r[0] {
						t.Fatalf("AI clear burst read byte %d = %#02x, want %#02x", i, b, r[0])
					}
				}
				mustTx(t, p, []byte{PCA9685Mode1, 0x31}, nil)
			}
			got := make([]byte, len(tc.want))
			mustTx(t, p, []byte{tc.start}, got)
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("read from %#02x = % x, want % x", tc.start, got, tc.want)
				}
			}
		})
	}
}

func TestPCA9685AllLEDDropsOutputs(t *testing.T) {
	const prescale = 121
	p, clk := runningPCA(t, prescale)
	off := countsFor(1500*time.Microsecond, prescale)
	for ch := range 4 {
		setCounts(t, p, ch, 0, off)
	}
	clk.Advance(time.Hour) // channels hold their duty indefinitely
	for ch := range 4 {
		if pu := p.Pulse(ch); !pu.Present {
			t.Fatalf("Pulse(%d) after an hour = %+v, want a pulse", ch, pu)
		}
	}
	mustTx(t, p, []byte{PCA9685AllLEDOnL, 0, 0, 0, 0}, nil)
	for ch, c := range p.Channels(16) {
		if c != (PCA9685Channel{}) {
			t.Errorf("channel %d = %+v after ALL_LED 0/0, want zero counts", ch, c)
		}
		if pu := p.Pulse(ch); pu.Present {
			t.Errorf("Pulse(%d) = %+v after ALL_LED 0/0, want none", ch, pu)
		}
	}
}

func TestPCA9685Prescale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		awake bool
		v     byte
		want  byte
	}{
		{"asleep", false, 14, 14},
		{"asleep max", false, 255, 255},
		{"asleep clamped 0", false, 0, 3},
		{"asleep clamped 2", false, 2, 3},
		{"asleep minimum 3", false, 3, 3},
		{"awake ignored", true, 14, 0x1E},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, now := newFakeClock()
			p := NewPCA9685(now)
			if tc.awake {
				mustTx(t, p, []byte{PCA9685Mode1, 0x01}, nil)
			}
			mustTx(t, p, []byte{PCA9685Prescale, tc.v}, nil) // ACKed either way
			if got := readReg(t, p, PCA9685Prescale); got != tc.want {
				t.Errorf("PRE_SCALE = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPCA9685OscillatorStartup(t *testing.T) {
	clk, now := newFakeClock()
	p := NewPCA9685(now)
	mustTx(t, p, []byte{PCA9685Mode1, 0x31}, nil)
	setCounts(t, p, 0, 0, 1000)
	if p.Pulse(0).Present {
		t.Fatal("pulse while asleep")
	}
	mustTx(t, p, []byte{PCA9685Mode1, 0x21}, nil)
	for _, tc := range []struct {
		advance time.Duration
		want    bool
	}{
		{0, false},
		{PCA9685OscStartup - time.Nanosecond, false},
		{time.Nanosecond, true},
	} {
		clk.Advance(tc.advance)
		if got := p.Pulse(0).Present; got != tc.want {
			t.Errorf("%v after wake: Present = %v, want %v", time.Duration(clk.Now()), got, tc.want)
		}
	}
}

func TestPCA9685Frequency(t *testing.T) {
	for _, tc := range []struct {
		prescale byte
		hz       float64
	}{
		{3, 1525.88},
		{14, 406.90},
		{0x1E, 196.89},
		{121, 50.03},
		{255, 23.84},
	} {
		t.Run(fmt.Sprint("prescale ", tc.prescale), func(t *testing.T) {
			p, _ := runningPCA(t, tc.prescale)
			tick := time.Duration(int(tc.prescale)+1) * 40 * time.Nanosecond
			width := min(1500*time.Microsecond, 4095*tick/2)
			setCounts(t, p, 2, 0, countsFor(width, tc.prescale))
			pu := p.Pulse(2)
			if !pu.Present {
				t.Fatalf("Pulse = %+v, want a pulse", pu)
			}
			if hz := float64(time.Second) / float64(pu.Period); math.Abs(hz-tc.hz) > 0.01 {
				t.Errorf("frequency = %.3f Hz, want %.2f", hz, tc.hz)
			}
			if d := (pu.Width - width).Abs(); d > tick {
				t.Errorf("Width = %v, want %v within one count (%v)", pu.Width, width, tick)
			}
		})
	}
}

func TestPCA9685ChannelModes(t *testing.T) {
	const prescale = 14
	tick := 15 * 40 * time.Nanosecond
	for _, tc := range []struct {
		name       string
		regs       [4]byte // ON_L, ON_H, OFF_L, OFF_H
		invrt      bool
		wantCounts int // high counts, or 0 for no pulse
	}{
		{"normal 25%", [4]byte{0, 0, 0, 4}, false, 1024},
		{"delayed", [4]byte{0x00, 0x01, 0x00, 0x05}, false, 1024},
		{"ON after OFF wraps", [4]byte{0x00, 0x0F, 0x00, 0x01}, false, 512},
		{"ON == OFF is 0%", [4]byte{0x10, 0x02, 0x10, 0x02}, false, 0},
		{"full on is constant high", [4]byte{0, 0x10, 0, 4}, false, 0},
		{"full off", [4]byte{0, 0, 0, 0x14}, false, 0},
		{"full off beats full on", [4]byte{0, 0x10, 0, 0x10}, false, 0},
		{"INVRT 25% gives 75%", [4]byte{0, 0, 0, 4}, true, 3072},
		{"INVRT full off is constant high", [4]byte{0, 0, 0, 0x10}, true, 0},
		{"INVRT full on is constant low", [4]byte{0, 0x10, 0, 0}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := runningPCA(t, prescale)
			if tc.invrt {
				mustTx(t, p, []byte{PCA9685Mode2, PCA9685Invrt | PCA9685OutDrv}, nil)
			}
			mustTx(t, p, append([]byte{PCA9685LED0OnL + 4*5}, tc.regs[:]...), nil)
			pu := p.Pulse(5)
			want := Pulse{}
			if tc.wantCounts > 0 {
				want = Pulse{Width: time.Duration(tc.wantCounts) * tick, Period: 4096 * tick, Present: true}
			}
			if pu != want {
				t.Errorf("Pulse = %+v, want %+v", pu, want)
			}
		})
	}
}

func TestPCA9685Restart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		resume  []byte // transaction after waking
		present bool
	}{
		{"no restart keeps outputs off", nil, false},
		{"RESTART resumes", []byte{PCA9685Mode1, 0xA1}, true},
		{"channel write resumes", []byte{PCA9685LED0OnL + 4, 0, 0, 0, 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, clk := runningPCA(t, 121)
			setCounts(t, p, 0, 0, 300)
			mustTx(t, p, []byte{PCA9685Mode1, 0x31}, nil)
			if got := readReg(t, p, PCA9685Mode1); got != 0xB1 {
				t.Fatalf("MODE1 after sleep with PWM active = %#02x, want 0xb1", got)
			}
			mustTx(t, p, []byte{PCA9685Mode1, 0x21}, nil) // wake, RESTART written 0
			clk.Advance(PCA9685OscStartup)
			if got := readReg(t, p, PCA9685Mode1); got != 0xA1 {
				t.Fatalf("MODE1 after wake = %#02x, want 0xa1", got)
			}
			if tc.resume != nil {
				mustTx(t, p, tc.resume, nil)
			}
			if got := p.Pulse(0).Present; got != tc.present {
				t.Errorf("Pulse(0).Present = %v, want %v", got, tc.present)
			}
			if got, want := readReg(t, p, PCA9685Mode1)&PCA9685Restart != 0, !tc.present; got != want {
				t.Errorf("RESTART = %v, want %v", got, want)
			}
		})
	}
}

func TestPCA9685SleepWithoutPWMNoRestart(t *testing.T) {
	p, _ := runningPCA(t, 121)
	mustTx(t, p, []byte{PCA9685Mode1, 0x31}, nil)
	if got := readReg(t, p, PCA9685Mode1); got != 0x31 {
		t.Errorf("MODE1 = %#02x, want 0x31 (all channels off: no restart)", got)
	}
}

func TestPCA9685NACK(t *testing.T) {
	testNACK(t, func() Device {
		_, now := newFakeClock()
		return NewPCA9685(now)
	}, []nackCase{
		{"empty", nil, 0},
		{"read without pointer", nil, 1},
		{"reserved 0x46", []byte{0x46}, 1},
		{"reserved 0xF9 write", []byte{0xF9, 0}, 0},
		{"TestMode write", []byte{PCA9685TestMode, 1}, 0},
	})
	t.Run("AI burst from PRE_SCALE rolls over to MODE1", func(t *testing.T) {
		_, now := newFakeClock()
		p := NewPCA9685(now)
		mustTx(t, p, []byte{PCA9685Mode1, 0x31}, nil)
		mustTx(t, p, []byte{PCA9685Prescale, 30, 0x31}, nil) // 0xFE then 0x00, never 0xFF
		if got := readReg(t, p, PCA9685Prescale); got != 30 {
			t.Errorf("PRE_SCALE = %d, want 30", got)
		}
	})
	t.Run("TestMode write is not applied, reads 0", func(t *testing.T) {
		_, now := newFakeClock()
		p := NewPCA9685(now)
		if err := p.Tx([]byte{PCA9685TestMode, 1, 2}, nil); !errors.Is(err, ErrNACK) {
			t.Fatalf("write to TestMode = %v, want ErrNACK", err)
		}
		if got := readReg(t, p, PCA9685TestMode); got != 0 {
			t.Errorf("TestMode reads %#02x, want 0", got)
		}
	})
}

func TestPCA9685WritesOutputs(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    []byte
		want bool
	}{
		{"channel 0", []byte{0x06, 0, 0, 0, 1}, true},
		{"channel 3 OFF_H", []byte{0x15, 0x10}, true},
		{"channel 4", []byte{0x16, 0, 0, 0, 1}, false},
		{"ALL_LED", []byte{0xFA, 0, 0, 0, 0}, true},
		{"ALL_LED_OFF_H only", []byte{0xFD, 0x10}, true},
		{"MODE1", []byte{0x00, 0x21}, false},
		{"MODE1 burst rolls into channel 0", []byte{0x00, 0x21, 0x04, 0, 0, 0, 0, 0}, true},
		{"MODE1 burst stops before channel 0", []byte{0x00, 0x21, 0x04, 0, 0, 0, 0}, false},
		{"LED15 rolls over to MODE1", []byte{0x42, 0, 0, 0, 0, 0x21}, false},
		{"pointer only", []byte{0x06}, false},
		{"empty", nil, false},
		{"PRE_SCALE", []byte{0xFE, 121}, false},
		{"reserved", []byte{0x50, 0, 0}, false},
		{"TestMode", []byte{0xFF, 0, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PCA9685WritesOutputs(tc.w); got != tc.want {
				t.Errorf("PCA9685WritesOutputs(% x) = %v, want %v", tc.w, got, tc.want)
			}
		})
	}
}

func FuzzPCA9685Tx(f *testing.F) {
	f.Add([]byte{0x0A, 0x00, 0x21})
	f.Add([]byte{0x05, 0xFA, 0, 0, 0, 0, 0x08, 0x00})
	f.Add([]byte{0x02, 0xFE, 0x00, 0x02, 0x00, 0x21, 0x0D, 0x06, 0, 0, 0xFF, 0x1F})
	f.Add([]byte{0x02, 0xFF, 0x01, 0xF8, 0x46})
	f.Add([]byte{0x00, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk, now := newFakeClock()
		p := NewPCA9685(now)
		fuzzTx(t, p, data, func() {
			clk.Advance(100 * time.Microsecond)
			for ch := -1; ch <= PCA9685Channels; ch++ {
				if pu := p.Pulse(ch); pu.Present && (pu.Width <= 0 || pu.Width >= pu.Period) {
					t.Fatalf("Pulse(%d) = %+v", ch, pu)
				}
			}
			_ = p.Channels(int(clk.Now() % 20))
		})
		_ = PCA9685WritesOutputs(data)
	})
}
