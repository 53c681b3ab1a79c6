// Package imu reads an MPU9250 inertial measurement unit over I2C.
//
// Like the motors, the chip opens two ways: Init configures it from reset
// (on the ground), Attach adopts a chip that is already sampling and writes
// nothing, so a second flight-app instance never disturbs the first one's
// sensor. A sample is one 14-byte burst read, so accelerometer and gyro come
// from the same instant. Register addresses are periph's (mpu9250/reg);
// periph's driver itself reads one byte per transaction and resets the chip
// in Calibrate, which suits neither a 400 Hz loop nor a hand-over.
package imu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/mpu9250/reg"
)

const (
	whoAmI     = 0x71
	pwrReset   = 0x80
	pwrSleep   = 0x40
	pwrPLL     = 0x01
	standardG  = 9.80665
	degToRad   = math.Pi / 180
	resetDelay = 100 * time.Millisecond
)

// ErrNotRunning is the class of errors from Attach when the chip is not
// sampling with the expected configuration.
var ErrNotRunning = errors.New("imu: MPU9250 is not running as expected")

// Opts configures the IMU. The zero value of each field means the default
// noted beside it.
type Opts struct {
	Addr        uint16 // I2C address; 0 = 0x68
	AccelRangeG int    // full scale ±2, 4, 8 or 16 g; 0 = 8
	GyroRangeDP int    // full scale ±250, 500, 1000 or 2000 °/s; 0 = 1000
	// DLPF is the CONFIG register's DLPF_CFG (gyro low-pass); 0 = 2 (92 Hz),
	// good for a 400 Hz loop.
	DLPF byte
}

func (o Opts) withDefaults() (Opts, error) {
	if o.Addr == 0 {
		o.Addr = 0x68
	}
	if o.AccelRangeG == 0 {
		o.AccelRangeG = 8
	}
	if o.GyroRangeDP == 0 {
		o.GyroRangeDP = 1000
	}
	if o.DLPF == 0 {
		o.DLPF = 2
	}
	if _, ok := fsSel(o.AccelRangeG, 2); !ok {
		return o, fmt.Errorf("imu: accelerometer range ±%d g is not one of 2, 4, 8, 16", o.AccelRangeG)
	}
	if _, ok := fsSel(o.GyroRangeDP, 250); !ok {
		return o, fmt.Errorf("imu: gyro range ±%d °/s is not one of 250, 500, 1000, 2000", o.GyroRangeDP)
	}
	if o.DLPF > 7 {
		return o, fmt.Errorf("imu: DLPF_CFG %d is not 0..7", o.DLPF)
	}
	return o, nil
}

// fsSel returns the 2-bit FS_SEL for a full-scale value whose smallest
// setting is base (each step doubles it).
func fsSel(full, base int) (byte, bool) {
	for sel := range 4 {
		if base<<sel == full {
			return byte(sel), true
		}
	}
	return 0, false
}

// Sample is one IMU reading in the sensor's frame.
type Sample struct {
	Accel [3]float64 // specific force, m/s² (level and still: {0, 0, +9.81})
	Gyro  [3]float64 // angular rate, rad/s
	TempC float64
}

// Dev is an open IMU. It is not safe for concurrent use.
type Dev struct {
	d          i2c.Dev
	o          Opts
	accelScale float64 // m/s² per LSB
	gyroScale  float64 // rad/s per LSB
	buf        [14]byte
}

func newDev(bus i2c.Bus, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &Opts{}
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Dev{
		d:          i2c.Dev{Bus: bus, Addr: o.Addr},
		o:          o,
		accelScale: float64(o.AccelRangeG) * standardG / 32768,
		gyroScale:  float64(o.GyroRangeDP) * degToRad / 32768,
	}, nil
}

func (d *Dev) configWant() (gyro, accel byte) {
	gs, _ := fsSel(d.o.GyroRangeDP, 250)
	as, _ := fsSel(d.o.AccelRangeG, 2)
	return gs << 3, as << 3
}

func (d *Dev) checkID() error {
	var id [1]byte
	if err := d.d.Tx([]byte{reg.MPU9250_WHO_AM_I}, id[:]); err != nil {
		return fmt.Errorf("imu: read WHO_AM_I: %w (is the IMU at %#02x?)", err, d.o.Addr)
	}
	if id[0] != whoAmI {
		return fmt.Errorf("imu: WHO_AM_I = %#02x, want %#02x: not an MPU9250", id[0], whoAmI)
	}
	return nil
}

// Init resets the chip and configures it: PLL clock, all axes on, the
// ranges and low-pass filter of opts. It takes ~100 ms (the reset).
func Init(ctx context.Context, bus i2c.Bus, opts *Opts) (*Dev, error) {
	d, err := newDev(bus, opts)
	if err != nil {
		return nil, err
	}
	if err := d.checkID(); err != nil {
		return nil, err
	}
	if err := d.d.Tx([]byte{reg.MPU9250_PWR_MGMT_1, pwrReset}, nil); err != nil {
		return nil, fmt.Errorf("imu: reset: %w", err)
	}
	t := time.NewTimer(resetDelay)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	case <-t.C:
	}
	gyro, accel := d.configWant()
	steps := [][]byte{
		{reg.MPU9250_PWR_MGMT_1, pwrPLL},
		{reg.MPU9250_PWR_MGMT_2, 0},
		{reg.MPU9250_CONFIG, d.o.DLPF},
		{reg.MPU9250_SMPLRT_DIV, 0},
		{reg.MPU9250_GYRO_CONFIG, gyro},
		{reg.MPU9250_ACCEL_CONFIG, accel},
		{reg.MPU9250_ACCEL_CONFIG2, 0x03}, // accel low-pass 41 Hz
	}
	for _, w := range steps {
		if err := d.d.Tx(w, nil); err != nil {
			return nil, fmt.Errorf("imu: init: write %#02x: %w", w[0], err)
		}
	}
	return d, nil
}

// Attach adopts a chip that is already sampling. It checks WHO_AM_I, that
// the chip is awake with every axis on, and that its ranges match opts;
// otherwise it fails with ErrNotRunning. It writes nothing but register
// pointers.
func Attach(bus i2c.Bus, opts *Opts) (*Dev, error) {
	d, err := newDev(bus, opts)
	if err != nil {
		return nil, err
	}
	if err := d.checkID(); err != nil {
		return nil, err
	}
	var pwr [2]byte
	if err := d.d.Tx([]byte{reg.MPU9250_PWR_MGMT_1}, pwr[:]); err != nil {
		return nil, fmt.Errorf("imu: attach: read PWR_MGMT: %w", err)
	}
	var cfg [2]byte
	if err := d.d.Tx([]byte{reg.MPU9250_GYRO_CONFIG}, cfg[:]); err != nil {
		return nil, fmt.Errorf("imu: attach: read GYRO/ACCEL_CONFIG: %w", err)
	}
	gyro, accel := d.configWant()
	switch {
	case pwr[0]&pwrSleep != 0:
		return nil, fmt.Errorf("%w: PWR_MGMT_1=%#02x says it is asleep; cold-start it with Init", ErrNotRunning, pwr[0])
	case pwr[1] != 0:
		return nil, fmt.Errorf("%w: PWR_MGMT_2=%#02x has axes disabled", ErrNotRunning, pwr[1])
	case cfg[0]&0x18 != gyro:
		return nil, fmt.Errorf("%w: GYRO_CONFIG=%#02x, want range ±%d °/s", ErrNotRunning, cfg[0], d.o.GyroRangeDP)
	case cfg[1]&0x18 != accel:
		return nil, fmt.Errorf("%w: ACCEL_CONFIG=%#02x, want range ±%d g", ErrNotRunning, cfg[1], d.o.AccelRangeG)
	}
	return d, nil
}

// Read returns one sample from a single burst read of ACCEL_XOUT_H..GYRO_ZOUT_L.
func (d *Dev) Read() (Sample, error) {
	b := d.buf[:]
	if err := d.d.Tx([]byte{reg.MPU9250_ACCEL_XOUT_H}, b); err != nil {
		return Sample{}, fmt.Errorf("imu: read sample: %w", err)
	}
	v := func(i int) float64 { return float64(int16(binary.BigEndian.Uint16(b[2*i:]))) }
	return Sample{
		Accel: [3]float64{v(0) * d.accelScale, v(1) * d.accelScale, v(2) * d.accelScale},
		TempC: v(3)/333.87 + 21,
		Gyro:  [3]float64{v(4) * d.gyroScale, v(5) * d.gyroScale, v(6) * d.gyroScale},
	}, nil
}
