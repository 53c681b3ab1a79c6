// Package baro reads a BMP280 barometer over I2C and turns pressure into
// altitude. The flight app's altitude hold fuses it with the IMU.
//
// Init soft-resets and configures the chip (normal mode, oversampled, IIR
// filtered); Attach adopts a chip that is already measuring and writes
// nothing. Compensation follows the Bosch datasheet (BST-BMP280-DS001,
// section 3.11.3): 32-bit integer temperature, 64-bit integer pressure.
package baro

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/skyswap/skyswap/hw/mono"
)

const (
	regCalib    = 0x88
	regChipID   = 0xD0
	regReset    = 0xE0
	regCtrlMeas = 0xF4
	regConfig   = 0xF5
	regPress    = 0xF7

	chipID    = 0x58
	resetWord = 0xB6
	// ctrl_meas: osrs_t ×2 (010), osrs_p ×16 (101), normal mode (11).
	ctrlMeas = 0b010_101_11
	// config: t_sb 0.5 ms (000), IIR filter ×4 (010).
	config = 0b000_010_00
)

// ErrNotRunning is the class of errors from Attach when the chip is not
// measuring in normal mode.
var ErrNotRunning = errors.New("baro: BMP280 is not running as expected")

// Opts configures the barometer. The zero value of each field means the
// default noted beside it.
type Opts struct {
	Addr uint16 // I2C address; 0 = 0x76
}

// Dev is an open barometer. It is not safe for concurrent use.
type Dev struct {
	d   i2c.Dev
	cal calibration
	buf [6]byte
}

type calibration struct {
	t1                             uint16
	t2, t3                         int16
	p1                             uint16
	p2, p3, p4, p5, p6, p7, p8, p9 int16
}

func newDev(bus i2c.Bus, opts *Opts) (*Dev, error) {
	addr := uint16(0x76)
	if opts != nil && opts.Addr != 0 {
		addr = opts.Addr
	}
	d := &Dev{d: i2c.Dev{Bus: bus, Addr: addr}}
	var id [1]byte
	if err := d.d.Tx([]byte{regChipID}, id[:]); err != nil {
		return nil, fmt.Errorf("baro: read chip id: %w (is the barometer at %#02x?)", err, addr)
	}
	if id[0] != chipID {
		return nil, fmt.Errorf("baro: chip id %#02x, want %#02x: not a BMP280", id[0], chipID)
	}
	return d, nil
}

func (d *Dev) readCalibration() error {
	var b [24]byte
	if err := d.d.Tx([]byte{regCalib}, b[:]); err != nil {
		return fmt.Errorf("baro: read calibration: %w", err)
	}
	u := func(i int) uint16 { return binary.LittleEndian.Uint16(b[i:]) }
	s := func(i int) int16 { return int16(u(i)) }
	d.cal = calibration{
		t1: u(0), t2: s(2), t3: s(4),
		p1: u(6), p2: s(8), p3: s(10), p4: s(12), p5: s(14), p6: s(16), p7: s(18), p8: s(20), p9: s(22),
	}
	if d.cal.t1 == 0 || d.cal.p1 == 0 {
		return errors.New("baro: calibration reads as zero; the chip is not answering properly")
	}
	return nil
}

// Init soft-resets the chip, configures normal mode and waits for the first
// measurement (~50 ms).
func Init(ctx context.Context, bus i2c.Bus, opts *Opts) (*Dev, error) {
	d, err := newDev(bus, opts)
	if err != nil {
		return nil, err
	}
	if err := d.d.Tx([]byte{regReset, resetWord}, nil); err != nil {
		return nil, fmt.Errorf("baro: reset: %w", err)
	}
	if err := mono.Sleep(ctx, 5*time.Millisecond); err != nil {
		return nil, err
	}
	if err := d.readCalibration(); err != nil {
		return nil, err
	}
	// config is only writable in sleep mode, which the reset left us in.
	for _, w := range [][]byte{{regConfig, config}, {regCtrlMeas, ctrlMeas}} {
		if err := d.d.Tx(w, nil); err != nil {
			return nil, fmt.Errorf("baro: init: write %#02x: %w", w[0], err)
		}
	}
	if err := mono.Sleep(ctx, 50*time.Millisecond); err != nil {
		return nil, err
	}
	return d, nil
}

// Attach adopts a chip that is already measuring in normal mode. It reads
// the calibration and writes nothing but register pointers.
func Attach(bus i2c.Bus, opts *Opts) (*Dev, error) {
	d, err := newDev(bus, opts)
	if err != nil {
		return nil, err
	}
	var ctrl [1]byte
	if err := d.d.Tx([]byte{regCtrlMeas}, ctrl[:]); err != nil {
		return nil, fmt.Errorf("baro: attach: read ctrl_meas: %w", err)
	}
	if ctrl[0]&0b11 != 0b11 {
		return nil, fmt.Errorf("%w: ctrl_meas=%#02x is not normal mode; cold-start it with Init", ErrNotRunning, ctrl[0])
	}
	if err := d.readCalibration(); err != nil {
		return nil, err
	}
	return d, nil
}

// Read returns the compensated pressure (Pa) and temperature (°C) from one
// burst read of the data registers.
func (d *Dev) Read() (pressurePa, tempC float64, err error) {
	b := d.buf[:]
	if err := d.d.Tx([]byte{regPress}, b); err != nil {
		return 0, 0, fmt.Errorf("baro: read: %w", err)
	}
	rawP := int32(b[0])<<12 | int32(b[1])<<4 | int32(b[2])>>4
	rawT := int32(b[3])<<12 | int32(b[4])<<4 | int32(b[5])>>4
	if rawP == 0x80000 || rawT == 0x80000 {
		return 0, 0, errors.New("baro: no measurement yet (data registers hold the reset value)")
	}
	t, fine := d.cal.temperature(rawT)
	p := d.cal.pressure(rawP, fine)
	if p == 0 {
		return 0, 0, errors.New("baro: pressure compensation failed (division by zero: bad calibration)")
	}
	return float64(p) / 256, float64(t) / 100, nil
}

// temperature returns hundredths of °C and t_fine (datasheet 3.11.3).
func (c calibration) temperature(adc int32) (int32, int32) {
	var1 := ((adc>>3 - int32(c.t1)<<1) * int32(c.t2)) >> 11
	var2 := (((adc>>4 - int32(c.t1)) * (adc>>4 - int32(c.t1))) >> 12 * int32(c.t3)) >> 14
	fine := var1 + var2
	return (fine*5 + 128) >> 8, fine
}

// pressure returns Pa in Q24.8 (datasheet 3.11.3, 64-bit version).
func (c calibration) pressure(adc, fine int32) uint32 {
	var1 := int64(fine) - 128000
	var2 := var1 * var1 * int64(c.p6)
	var2 += (var1 * int64(c.p5)) << 17
	var2 += int64(c.p4) << 35
	var1 = (var1*var1*int64(c.p3))>>8 + (var1*int64(c.p2))<<12
	var1 = ((int64(1)<<47 + var1) * int64(c.p1)) >> 33
	if var1 == 0 {
		return 0
	}
	p := int64(1048576 - adc)
	p = ((p<<31 - var2) * 3125) / var1
	var1 = (int64(c.p9) * (p >> 13) * (p >> 13)) >> 25
	var2 = (int64(c.p8) * p) >> 19
	p = (p+var1+var2)>>8 + int64(c.p7)<<4
	return uint32(p)
}

// SeaLevelPa is the ISA standard pressure at sea level.
const SeaLevelPa = 101325.0

// Altitude returns the height in metres of pressure p above the level where
// the pressure is p0, by the international barometric formula.
func Altitude(p, p0 float64) float64 {
	return 44330.77 * (1 - math.Pow(p/p0, 0.190263))
}
