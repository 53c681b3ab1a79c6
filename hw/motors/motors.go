// Package motors drives the ESCs of a quadcopter through a PCA9685 PWM
// controller on an I2C bus. It is an actuator driver, so it takes the
// actuators' view of the bus (a lease.Bus: every write fenced by the
// hardware lease), never the plain i2c.Bus the sensors use; an actuator
// driver added later does the same.
//
// There are two ways to open the chip. Init is the cold start on the ground:
// it programs the prescaler for the ESC rate, sets every channel to the
// minimum pulse (which arms the ESCs) and wakes the oscillator. Attach adopts
// a chip that is already driving motors, as a new flight-app instance does
// during a hand-over: it checks the configuration and writes nothing until
// told to. periph's pca9685.NewI2C is neither: it zeroes all outputs and
// sleeps the oscillator for ~205 ms, which stops the ESCs in flight.
package motors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// N is the number of motors.
const N = 4

// PCA9685 registers and bits.
const (
	regMode1    = 0x00
	regMode2    = 0x01
	regLED0     = 0x06
	regPrescale = 0xFE

	mode1Restart = 0x80
	mode1AI      = 0x20
	mode1Sleep   = 0x10
	mode1AllCall = 0x01
	mode2OutDrv  = 0x04

	oscHz = 25e6
)

// ErrNotRunning is the class of errors from Attach when the chip is not
// driving motors with the expected configuration (asleep, another prescale,
// auto-increment off): adopting it would mean reconfiguring it in flight.
var ErrNotRunning = errors.New("motors: PCA9685 is not running as expected")

// Opts configures the motor driver. The zero value of each field means the
// default noted beside it.
type Opts struct {
	Addr     uint16        // I2C address; 0 = 0x40
	RateHz   float64       // ESC update rate; 0 = 400 (the chip's prescale is derived from it)
	MinPulse time.Duration // pulse at zero throttle; 0 = 1000 µs
	MaxPulse time.Duration // pulse at full throttle; 0 = 2000 µs
	// Channel maps motor i to PCA9685 channel Channel[i]; nil = 0,1,2,3.
	// Consecutive channels are written in one transaction.
	Channel []int
	// ArmTime is how long Init holds the minimum pulse so the ESCs arm;
	// 0 = 600 ms.
	ArmTime time.Duration
}

// DefaultOpts is the configuration of the project's airframe.
var DefaultOpts = Opts{}

func (o Opts) withDefaults() (Opts, error) {
	if o.Addr == 0 {
		o.Addr = 0x40
	}
	if o.RateHz == 0 {
		o.RateHz = 400
	}
	if o.MinPulse == 0 {
		o.MinPulse = 1000 * time.Microsecond
	}
	if o.MaxPulse == 0 {
		o.MaxPulse = 2000 * time.Microsecond
	}
	if o.Channel == nil {
		o.Channel = []int{0, 1, 2, 3}
	}
	if o.ArmTime == 0 {
		o.ArmTime = 600 * time.Millisecond
	}
	switch {
	case o.RateHz < 24 || o.RateHz > 1526:
		return o, fmt.Errorf("motors: rate %v Hz is outside the PCA9685's 24..1526 Hz", o.RateHz)
	case o.MaxPulse <= o.MinPulse:
		return o, fmt.Errorf("motors: max pulse %v must exceed min pulse %v", o.MaxPulse, o.MinPulse)
	case float64(o.MaxPulse) >= 1e9/o.RateHz:
		return o, fmt.Errorf("motors: max pulse %v does not fit in a %v Hz period", o.MaxPulse, o.RateHz)
	case len(o.Channel) != N:
		return o, fmt.Errorf("motors: %d channels given, want %d", len(o.Channel), N)
	}
	for _, c := range o.Channel {
		if c < 0 || c > 15 {
			return o, fmt.Errorf("motors: channel %d is not a PCA9685 channel (0..15)", c)
		}
	}
	return o, nil
}

// Prescale returns the PCA9685 prescale value for an output rate, as the
// datasheet gives it: round(25 MHz / (4096 × rate)) − 1.
func Prescale(rateHz float64) byte {
	return byte(math.Round(oscHz/(4096*rateHz)) - 1)
}

// Dev is an open motor controller. It is not safe for concurrent use.
type Dev struct {
	d        i2c.Dev
	o        Opts
	periodNs float64 // actual output period from the prescale
	contig   bool    // channels are consecutive: one transaction per Set
	buf      [1 + 4*N]byte
}

func newDev(bus i2c.Bus, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Dev{d: i2c.Dev{Bus: bus, Addr: o.Addr}, o: o, contig: true}
	d.periodNs = 1e9 * 4096 * (float64(Prescale(o.RateHz)) + 1) / oscHz
	for i := 1; i < N; i++ {
		if o.Channel[i] != o.Channel[0]+i {
			d.contig = false
		}
	}
	return d, nil
}

// Init cold-starts the chip: it sleeps the oscillator, programs the
// prescale, sets every motor channel to the minimum pulse, wakes the chip with
// auto-increment, and holds the minimum pulse for ArmTime so the ESCs arm. Use
// it on the ground only: in flight it stops the motors. ctx bounds the wait.
func Init(ctx context.Context, bus lease.Bus, opts *Opts) (*Dev, error) {
	d, err := newDev(bus, opts)
	if err != nil {
		return nil, err
	}
	steps := [][]byte{
		{regMode1, mode1Sleep | mode1AI | mode1AllCall},
		{regPrescale, Prescale(d.o.RateHz)},
		{regMode2, mode2OutDrv},
	}
	for _, w := range steps {
		if err := d.d.Tx(w, nil); err != nil {
			return nil, fmt.Errorf("motors: init: write %#02x: %w", w[0], err)
		}
	}
	if err := d.Stop(); err != nil {
		return nil, fmt.Errorf("motors: init: %w", err)
	}
	if err := d.d.Tx([]byte{regMode1, mode1AI | mode1AllCall}, nil); err != nil {
		return nil, fmt.Errorf("motors: init: wake: %w", err)
	}
	// The oscillator needs 500 µs to settle before RESTART is meaningful.
	if err := mono.Sleep(ctx, time.Millisecond); err != nil {
		return nil, err
	}
	if err := mono.Sleep(ctx, d.o.ArmTime); err != nil {
		return nil, fmt.Errorf("motors: arming: %w", err)
	}
	return d, nil
}

// Attach adopts a chip that is already driving the motors. It reads MODE1
// and PRESCALE and fails with ErrNotRunning unless the chip is awake, auto-
// incrementing and at this rate's prescale. It writes nothing.
func Attach(bus lease.Bus, opts *Opts) (*Dev, error) {
	d, err := newDev(bus, opts)
	if err != nil {
		return nil, err
	}
	var mode1, prescale [1]byte
	if err := d.d.Tx([]byte{regMode1}, mode1[:]); err != nil {
		return nil, fmt.Errorf("motors: attach: read MODE1: %w", err)
	}
	if err := d.d.Tx([]byte{regPrescale}, prescale[:]); err != nil {
		return nil, fmt.Errorf("motors: attach: read PRESCALE: %w", err)
	}
	switch want := Prescale(d.o.RateHz); {
	case mode1[0]&mode1Sleep != 0:
		return nil, fmt.Errorf("%w: MODE1=%#02x says it is asleep; cold-start it with Init on the ground", ErrNotRunning, mode1[0])
	case mode1[0]&mode1AI == 0:
		return nil, fmt.Errorf("%w: MODE1=%#02x has auto-increment off", ErrNotRunning, mode1[0])
	case prescale[0] != want:
		return nil, fmt.Errorf("%w: PRESCALE=%d, want %d for %v Hz; check the configured rate", ErrNotRunning, prescale[0], want, d.o.RateHz)
	}
	return d, nil
}

// Set writes the four motor throttles (0 = min pulse, 1 = max pulse; values
// outside are clamped, NaN is treated as 0). With consecutive channels this is
// one I2C transaction.
func (d *Dev) Set(throttle [N]float64) error {
	var counts [N]uint16
	for i, t := range throttle {
		counts[i] = d.counts(t)
	}
	return d.write(counts)
}

// Stop sets every motor to the minimum pulse: motors idle, ESCs stay armed.
func (d *Dev) Stop() error { return d.Set([N]float64{}) }

// Read returns the throttles the chip is driving now, as written by whoever
// holds the motors.
func (d *Dev) Read() ([N]float64, error) {
	var out [N]float64
	for i := range N {
		var b [4]byte
		if err := d.d.Tx([]byte{byte(regLED0 + 4*d.o.Channel[i])}, b[:]); err != nil {
			return out, fmt.Errorf("motors: read channel %d: %w", d.o.Channel[i], err)
		}
		on := int(b[0]) | int(b[1]&0x0f)<<8
		off := int(b[2]) | int(b[3]&0x0f)<<8
		if b[3]&0x10 != 0 { // full off
			continue
		}
		width := float64((off-on+4096)%4096) / 4096 * d.periodNs
		out[i] = (width - float64(d.o.MinPulse)) / float64(d.o.MaxPulse-d.o.MinPulse)
	}
	return out, nil
}

// PeriodNs is the chip's actual output period in nanoseconds.
func (d *Dev) PeriodNs() float64 { return d.periodNs }

func (d *Dev) counts(t float64) uint16 {
	if !(t > 0) { // also NaN
		t = 0
	}
	if t > 1 {
		t = 1
	}
	width := float64(d.o.MinPulse) + t*float64(d.o.MaxPulse-d.o.MinPulse)
	return uint16(math.Round(width / d.periodNs * 4096))
}

// write sends ON=0, OFF=count for each motor channel.
func (d *Dev) write(counts [N]uint16) error {
	if d.contig {
		b := d.buf[:]
		b[0] = byte(regLED0 + 4*d.o.Channel[0])
		for i, c := range counts {
			b[1+4*i], b[2+4*i], b[3+4*i], b[4+4*i] = 0, 0, byte(c), byte(c>>8)
		}
		if err := d.d.Tx(b, nil); err != nil {
			return fmt.Errorf("motors: write: %w", err)
		}
		return nil
	}
	for i, c := range counts {
		w := [5]byte{byte(regLED0 + 4*d.o.Channel[i]), 0, 0, byte(c), byte(c >> 8)}
		if err := d.d.Tx(w[:], nil); err != nil {
			return fmt.Errorf("motors: write channel %d: %w", d.o.Channel[i], err)
		}
	}
	return nil
}
