package motors

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease/leasetest"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The traffic below was recorded from this driver against the virtual
// drone's PCA9685 model and checked by hand against the NXP datasheet
// (rev. 4, section 7.3): prescale 14 for 400 Hz, LED0_ON_L at 0x06,
// ON=0 and OFF=count, little-endian, with MODE1 auto-increment.

// minCount is 1000 µs at prescale 14: period = 4096*15/25 MHz = 2457.6 µs.
var minCount uint16 = 1667 // round(1000/2457.6*4096)

func minPulseWrite() []byte {
	w := []byte{0x06}
	for range N {
		w = append(w, 0, 0, byte(minCount), byte(minCount>>8))
	}
	return w
}

func TestInitTraffic(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x00, 0x31}}, // sleep, AI, ALLCALL
		{Addr: 0x40, W: []byte{0xFE, 14}},   // prescale for 400 Hz
		{Addr: 0x40, W: []byte{0x01, 0x04}}, // totem-pole outputs
		{Addr: 0x40, W: minPulseWrite()},    // every motor at the arming pulse
		{Addr: 0x40, W: []byte{0x00, 0x21}}, // wake with AI
	}}
	opts := Opts{ArmTime: time.Millisecond}
	d, err := Init(context.Background(), leasetest.Bus(bus), &opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := d.PeriodNs(), 2457600.0; math.Abs(got-want) > 1 {
		t.Fatalf("period %v ns, want %v", got, want)
	}
}

func TestAttachWritesNothing(t *testing.T) {
	cases := []struct {
		name     string
		mode1    byte
		prescale byte
		wantErr  bool
	}{
		{"running", 0x21, 14, false},
		{"running with restart flag", 0xA1, 14, false},
		{"asleep", 0x31, 14, true},
		{"no auto-increment", 0x01, 14, true},
		{"other rate", 0x21, 121, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Playback fails the test on any transaction not listed: a write
			// here would be caught.
			bus := &i2ctest.Playback{Ops: []i2ctest.IO{
				{Addr: 0x40, W: []byte{0x00}, R: []byte{tc.mode1}},
				{Addr: 0x40, W: []byte{0xFE}, R: []byte{tc.prescale}},
			}, DontPanic: true}
			_, err := Attach(leasetest.Bus(bus), nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Attach: err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, ErrNotRunning) {
				t.Fatalf("err = %v, want ErrNotRunning", err)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetIsOneTransaction(t *testing.T) {
	c := func(us float64) uint16 { return uint16(math.Round(us / 2457.6 * 4096)) }
	w := []byte{0x06}
	for _, us := range []float64{1000, 1500, 2000, 1250} {
		n := c(us)
		w = append(w, 0, 0, byte(n), byte(n>>8))
	}
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x00}, R: []byte{0x21}},
		{Addr: 0x40, W: []byte{0xFE}, R: []byte{14}},
		{Addr: 0x40, W: w},
	}}
	d, err := Attach(leasetest.Bus(bus), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Out-of-range throttles clamp; NaN is treated as zero.
	if err := d.Set([N]float64{math.NaN(), 0.5, 1.7, 0.25}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSetScatteredChannels(t *testing.T) {
	opts := Opts{Channel: []int{0, 2, 4, 6}}
	var ops []i2ctest.IO
	ops = append(ops, i2ctest.IO{Addr: 0x40, W: []byte{0x00}, R: []byte{0x21}}, i2ctest.IO{Addr: 0x40, W: []byte{0xFE}, R: []byte{14}})
	for _, ch := range opts.Channel {
		ops = append(ops, i2ctest.IO{Addr: 0x40, W: []byte{byte(0x06 + 4*ch), 0, 0, byte(minCount), byte(minCount >> 8)}})
	}
	bus := &i2ctest.Playback{Ops: ops}
	d, err := Attach(leasetest.Bus(bus), &opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRead(t *testing.T) {
	mid := uint16(math.Round(1500 / 2457.6 * 4096))
	ops := []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x00}, R: []byte{0x21}},
		{Addr: 0x40, W: []byte{0xFE}, R: []byte{14}},
		{Addr: 0x40, W: []byte{0x06}, R: []byte{0, 0, byte(mid), byte(mid >> 8)}},
		{Addr: 0x40, W: []byte{0x0A}, R: []byte{0, 0, byte(minCount), byte(minCount >> 8)}},
		{Addr: 0x40, W: []byte{0x0E}, R: []byte{0, 0, 0, 0x10}}, // full off
		{Addr: 0x40, W: []byte{0x12}, R: []byte{0, 0, byte(mid), byte(mid >> 8)}},
	}
	bus := &i2ctest.Playback{Ops: ops}
	d, err := Attach(leasetest.Bus(bus), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := [N]float64{0.5, 0, 0, 0.5}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 0.002 {
			t.Fatalf("Read = %v, want %v", got, want)
		}
	}
}

func TestOptsErrors(t *testing.T) {
	cases := map[string]Opts{
		"rate too low":    {RateHz: 10},
		"pulse too long":  {RateHz: 490, MaxPulse: 2100 * time.Microsecond},
		"inverted pulses": {MinPulse: 2 * time.Millisecond, MaxPulse: time.Millisecond},
		"three channels":  {Channel: []int{0, 1, 2}},
		"bad channel":     {Channel: []int{0, 1, 2, 16}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Attach(leasetest.Bus(&i2ctest.Playback{}), &o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestPrescale(t *testing.T) {
	for _, tc := range []struct {
		hz   float64
		want byte
	}{{50, 121}, {400, 14}, {1526, 3}, {24, 253}} {
		if got := Prescale(tc.hz); got != tc.want {
			t.Errorf("Prescale(%v) = %d, want %d", tc.hz, got, tc.want)
		}
	}
}
