package chips

import (
	"fmt"
	"math"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
	"periph.io/x/devices/v3/mpu9250"
	"periph.io/x/devices/v3/pca9685"
)

// testBus is an i2c.Bus routing transactions to the models by address, so
// that periph's own drivers can run against them.
type testBus struct {
	devs map[uint16]Device
	// after, if set, is called after each transaction.
	after func(addr uint16, w []byte)
}

func (b *testBus) String() string                    { return "chips-test-bus" }
func (b *testBus) SetSpeed(f physic.Frequency) error { return nil }

func (b *testBus) Tx(addr uint16, w, r []byte) error {
	d, ok := b.devs[addr]
	if !ok {
		return fmt.Errorf("address %#02x: %w", addr, ErrNACK)
	}
	err := d.Tx(w, r)
	if b.after != nil {
		b.after(addr, w)
	}
	return err
}

// pcaTick returns one oscillator count at the chip's current prescale.
func pcaTick(t *testing.T, p *PCA9685) time.Duration {
	t.Helper()
	return (time.Duration(readReg(t, p, PCA9685Prescale)) + 1) * 40 * time.Nanosecond
}

func TestPeriphPCA9685(t *testing.T) {
	t.Parallel()
	p := NewPCA9685(realClock())
	dev, err := pca9685.NewI2C(&testBus{devs: map[uint16]Device{PCA9685Addr: p}}, pca9685.I2CAddr)
	if err != nil {
		t.Fatal(err)
	}
	// periph rounds 25 MHz/4096/50 Hz to 122 without the datasheet's -1.
	if got := readReg(t, p, PCA9685Prescale); got != 122 {
		t.Errorf("PRE_SCALE after periph init = %d, want 122", got)
	}
	if got := readReg(t, p, PCA9685Mode1); got != PCA9685AI|PCA9685AllCall {
		t.Errorf("MODE1 after periph init = %#02x, want 0x21", got)
	}
	tick := pcaTick(t, p)
	for _, tc := range []struct {
		ch    int
		width time.Duration
	}{
		{0, 1500 * time.Microsecond},
		{1, 1000 * time.Microsecond},
		{3, 2000 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("channel %d %v", tc.ch, tc.width), func(t *testing.T) {
			if err := dev.SetPwm(tc.ch, 0, gpio.Duty(tc.width/tick)); err != nil {
				t.Fatal(err)
			}
			pu := p.Pulse(tc.ch)
			if !pu.Present || pu.Period != 4096*tick || (pu.Width-tc.width).Abs() > tick {
				t.Errorf("Pulse = %+v, want %v every %v", pu, tc.width, 4096*tick)
			}
			if err := dev.SetFullOff(tc.ch); err != nil {
				t.Fatal(err)
			}
			if pu := p.Pulse(tc.ch); pu.Present {
				t.Errorf("Pulse after SetFullOff = %+v, want none", pu)
			}
			if err := dev.SetFullOn(tc.ch); err != nil {
				t.Fatal(err)
			}
			if c := p.Channels(4)[tc.ch]; !c.FullOn || c.FullOff || p.Pulse(tc.ch).Present {
				t.Errorf("after SetFullOn channel = %+v, Pulse = %+v, want constant high", c, p.Pulse(tc.ch))
			}
		})
	}
}

// TestPeriphPCA9685InitDropsRunningOutputs is the project's central fact at
// the register level: periph's pca9685.NewI2C on a chip already driving the
// ESCs starts with SetAllPwm(0, 0), so every motor loses its pulse train at
// the first transaction and for the rest of the ~205 ms init.
func TestPeriphPCA9685InitDropsRunningOutputs(t *testing.T) {
	t.Parallel()
	const prescale = 121 // 50 Hz
	p := NewPCA9685(realClock())
	mustTx(t, p, []byte{PCA9685Mode1, PCA9685AI | PCA9685Sleep | PCA9685AllCall}, nil)
	mustTx(t, p, []byte{PCA9685Prescale, prescale}, nil)
	mustTx(t, p, []byte{PCA9685Mode1, PCA9685AI | PCA9685AllCall}, nil)
	time.Sleep(2 * PCA9685OscStartup)
	off := countsFor(1500*time.Microsecond, prescale)
	for ch := range 4 {
		setCounts(t, p, ch, 0, off)
		if pu := p.Pulse(ch); !pu.Present {
			t.Fatalf("setup: Pulse(%d) = %+v, want 1500 µs", ch, pu)
		}
	}

	type step struct {
		w       []byte
		present [4]bool
	}
	var steps []step
	bus := &testBus{
		devs: map[uint16]Device{PCA9685Addr: p},
		after: func(addr uint16, w []byte) {
			s := step{w: append([]byte(nil), w...)}
			for ch := range s.present {
				s.present[ch] = p.Pulse(ch).Present
			}
			steps = append(steps, s)
		},
	}
	if _, err := pca9685.NewI2C(bus, pca9685.I2CAddr); err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 || !PCA9685WritesOutputs(steps[0].w) {
		t.Fatalf("first transaction of periph's init is not a motor update: %+v", steps)
	}
	for i, s := range steps {
		if s.present != [4]bool{} {
			t.Errorf("after transaction %d (% x) pulses present = %v, want all dropped", i, s.w, s.present)
		}
	}
	for ch, c := range p.Channels(4) {
		if c != (PCA9685Channel{}) || p.Pulse(ch).Present {
			t.Errorf("after init channel %d = %+v, Pulse = %+v, want ON=OFF=0 and no pulse", ch, c, p.Pulse(ch))
		}
	}
}

func TestPeriphMPU9250(t *testing.T) {
	t.Parallel()
	m := NewMPU9250(realClock())
	m.Sense([3]float64{0, 0, StandardGravity}, [3]float64{10 * dps, -20 * dps, 5 * dps}, 30)
	tr, err := mpu9250.NewI2cTransport(&testBus{devs: map[uint16]Device{MPU9250Addr: m}}, MPU9250Addr)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := mpu9250.New(*tr)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := dev.GetDeviceID(); err != nil || id != 0x71 {
		t.Fatalf("GetDeviceID = %#02x, %v, want 0x71", id, err)
	}
	if err := dev.Init(); err != nil {
		t.Fatal(err)
	}
	if !m.Running() {
		t.Fatal("not running after periph Init")
	}
	for _, tc := range []struct {
		name string
		get  func() (int16, error)
		want int16
	}{
		{"AccelerationX", dev.GetAccelerationX, 0},
		{"AccelerationY", dev.GetAccelerationY, 0},
		{"AccelerationZ", dev.GetAccelerationZ, 16384},
		{"RotationX", dev.GetRotationX, 1310},
		{"RotationY", dev.GetRotationY, -2620},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.get(); err != nil || got != tc.want {
				t.Errorf("Get%s = %d, %v, want %d", tc.name, got, err, tc.want)
			}
		})
	}
	// periph's Init writes PWR_MGMT_2=0x01, which disables gyro Z.
	if got, err := dev.GetRotationZ(); err == nil {
		t.Errorf("GetRotationZ = %d, want an error: Init disabled gyro Z", got)
	}
}

func TestPeriphBMP280(t *testing.T) {
	t.Parallel()
	b := NewBMP280(realClock())
	bus := &testBus{devs: map[uint16]Device{BMP280Addr: b}}
	dev, err := bmxx80.NewI2C(bus, BMP280Addr, &bmxx80.DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, e physic.Env, pa, c float64) {
		t.Helper()
		if got := float64(e.Pressure) / float64(physic.Pascal); math.Abs(got-pa) > 2 {
			t.Errorf("pressure = %.2f Pa, want %.1f ± 2", got, pa)
		}
		if got := e.Temperature.Celsius(); math.Abs(got-c) > 0.01+1e-6 {
			t.Errorf("temperature = %.3f °C, want %.2f ± 0.01", got, c)
		}
	}
	for _, tc := range []struct{ pa, c float64 }{
		{101325, 25},
		{101325, 15},
		{95461.3, 8.25},
		{100000, -5},
		{80000, 35.7},
	} {
		t.Run(fmt.Sprintf("forced %gPa %g°C", tc.pa, tc.c), func(t *testing.T) {
			b.Sense(tc.pa, tc.c)
			var e physic.Env
			if err := dev.Sense(&e); err != nil {
				t.Fatal(err)
			}
			check(t, e, tc.pa, tc.c)
		})
	}
	t.Run("continuous", func(t *testing.T) {
		b.Sense(99000, 22)
		ch, err := dev.SenseContinuous(10 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		check(t, <-ch, 99000, 22)
		b.Sense(98000, 23)
		var e physic.Env
		for range 5 { // the first one may predate the new Sense
			if e = <-ch; math.Abs(float64(e.Pressure)/float64(physic.Pascal)-98000) < 2 {
				break
			}
		}
		check(t, e, 98000, 23)
		if err := dev.Halt(); err != nil {
			t.Fatal(err)
		}
		if got := readReg(t, b, BMP280CtrlMeas) & 3; got != BMP280ModeSleep {
			t.Errorf("mode after Halt = %d, want sleep", got)
		}
	})
}
