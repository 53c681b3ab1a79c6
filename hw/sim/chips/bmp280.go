package chips

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// BMP280 register addresses.
const (
	BMP280Calib00   byte = 0x88 // calib00 (dig_T1 LSB), first trimming byte
	BMP280Calib25   byte = 0xA1 // calib25, last trimming byte
	BMP280ID        byte = 0xD0 // chip id
	BMP280Reset     byte = 0xE0 // soft reset
	BMP280Status    byte = 0xF3 // status
	BMP280CtrlMeas  byte = 0xF4 // ctrl_meas: osrs_t, osrs_p, mode
	BMP280Config    byte = 0xF5 // config: t_sb, filter, spi3w_en
	BMP280PressMSB  byte = 0xF7 // press_msb, first data register
	BMP280TempXLSB  byte = 0xFC // temp_xlsb, last data register
	BMP280ChipID    byte = 0x58 // value of the chip id register
	BMP280ResetWord byte = 0xB6 // value to write to reset for a soft reset
)

// BMP280 power modes (ctrl_meas bits 1:0; 0b10 is forced too).
const (
	BMP280ModeSleep  byte = 0
	BMP280ModeForced byte = 1
	BMP280ModeNormal byte = 3
)

// bmp280Cal is the trimming of the simulated part: the datasheet's example
// values (section 3.12), dig_T1..dig_P9.
var bmp280Cal = [12]int32{27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000}

// BMP280Startup is how long status.im_update reads 1 after power-on or a
// soft reset, while the trimming is copied from NVM.
const BMP280Startup = 2 * time.Millisecond

// bmp280Skipped is the 20-bit value of a skipped measurement.
const bmp280Skipped = 0x80000

// BMP280 models the Bosch BMP280 pressure and temperature sensor on I2C.
//
// Measurements are instantaneous: a forced-mode write measures at once and
// returns to sleep, status.measuring always reads 0, and in normal mode the
// data registers follow the sensed values without t_sb timing. The IIR
// filter is not modelled. status.im_update reads 1 for BMP280Startup after
// power-on and soft reset. The ADC resolution follows the oversampling (16
// bits at x1 up to 20 bits at x16), and the raw values are chosen so that
// the datasheet's integer compensation returns the sensed values. Writes to
// config are ignored in normal mode (datasheet 5.4.6). Writes are
// register/data pairs (no auto-increment); a trailing odd byte only sets the
// register pointer. Reads auto-increment.
type BMP280 struct {
	now Clock

	mu       sync.Mutex
	ptr      byte
	ptrSet   bool
	resetAt  int64 // last power-on or soft reset
	ctrlMeas byte
	config   byte
	data     [6]byte // press_msb..temp_xlsb while not in normal mode
	pressure float64
	tempC    float64
	cache    bmp280Raw
}

// bmp280Raw caches the raw ADC values for one set of inputs.
type bmp280Raw struct {
	valid          bool
	pressure, temp float64
	osrsT, osrsP   byte
	rawT, rawP     int32
}

// NewBMP280 returns a BMP280 just powered on: sleep mode, data registers
// 0x80000 (skipped). It senses 101325 Pa at 25 °C until Sense is called.
func NewBMP280(now Clock) *BMP280 {
	b := &BMP280{now: now, pressure: 101325, tempC: 25}
	b.reset(now())
	return b
}

func (b *BMP280) reset(now int64) {
	b.resetAt = now
	b.ctrlMeas, b.config = 0, 0
	b.data = [6]byte{0x80, 0, 0, 0x80, 0, 0}
}

// Sense sets the pressure in Pa and temperature in °C the sensor measures.
func (b *BMP280) Sense(pressurePa, tempC float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pressure, b.tempC = pressurePa, tempC
}

// bmp280Valid reports whether register r exists.
func bmp280Valid(r byte) bool {
	switch {
	case r >= BMP280Calib00 && r <= BMP280Calib25,
		r == BMP280ID, r == BMP280Reset,
		r >= BMP280Status && r <= BMP280Config,
		r >= BMP280PressMSB && r <= BMP280TempXLSB:
		return true
	}
	return false
}

// Tx implements Device.
func (b *BMP280) Tx(w, r []byte) error {
	if len(w) == 0 && len(r) == 0 {
		return fmt.Errorf("bmp280: empty transaction: %w", ErrNACK)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for i := 0; i < len(w); i += 2 {
		if !bmp280Valid(w[i]) {
			return fmt.Errorf("bmp280: byte %d: reserved register %#02x: %w", i, w[i], ErrNACK)
		}
		b.ptr, b.ptrSet = w[i], true
		if i+1 < len(w) {
			if err := b.write(w[i], w[i+1], now); err != nil {
				return fmt.Errorf("bmp280: byte %d: %w", i+1, err)
			}
		}
	}
	if len(w) == 0 && !b.ptrSet {
		return fmt.Errorf("bmp280: read with no register pointer set: %w", ErrNACK)
	}
	if len(r) > 0 {
		data := b.data
		if b.ctrlMeas&3 == BMP280ModeNormal {
			data = b.measure()
		}
		for i := range r {
			r[i] = b.read(b.ptr, &data, now)
			b.ptr++
		}
	}
	return nil
}

func (b *BMP280) write(r, v byte, now int64) error {
	switch r {
	case BMP280Reset:
		if v == BMP280ResetWord {
			b.reset(now)
		}
	case BMP280CtrlMeas:
		if b.ctrlMeas&3 == BMP280ModeNormal {
			b.data = b.measure() // leaving normal mode keeps the last sample
		}
		b.ctrlMeas = v
		if m := v & 3; m == 1 || m == 2 {
			b.data = b.measure()
			b.ctrlMeas &^= 3 // back to sleep
		}
	case BMP280Config:
		if b.ctrlMeas&3 != BMP280ModeNormal {
			b.config = v &^ 0x02 // bit 1 is reserved
		}
	default:
		return fmt.Errorf("register %#02x is read-only: %w", r, ErrNACK)
	}
	return nil
}

func (b *BMP280) read(r byte, data *[6]byte, now int64) byte {
	switch {
	case r == BMP280Status:
		if now-b.resetAt < int64(BMP280Startup) {
			return 0x01 // im_update
		}
		return 0 // measuring is never set: measurements are instantaneous
	case r >= BMP280Calib00 && r < BMP280Calib00+24:
		i := r - BMP280Calib00
		return byte(bmp280Cal[i/2] >> (8 * (i % 2)))
	case r == BMP280ID:
		return BMP280ChipID
	case r == BMP280CtrlMeas:
		return b.ctrlMeas
	case r == BMP280Config:
		return b.config
	case r >= BMP280PressMSB && r <= BMP280TempXLSB:
		return data[r-BMP280PressMSB]
	}
	return 0 // calib24/25, reset and reserved addresses
}

// measure returns the data registers for one measurement of the sensed
// values with the current oversampling.
func (b *BMP280) measure() [6]byte {
	osrsT, osrsP := b.ctrlMeas>>5, b.ctrlMeas>>2&7
	c := &b.cache
	if !c.valid || c.pressure != b.pressure || c.temp != b.tempC || c.osrsT != osrsT || c.osrsP != osrsP {
		rawT, tFine := bmp280InvertTemp(b.tempC, bmp280Step(osrsT))
		if osrsT == 0 {
			rawT = bmp280Skipped
		}
		rawP := int32(bmp280Skipped)
		if osrsP != 0 {
			rawP = bmp280InvertPress(b.pressure, tFine, bmp280Step(osrsP))
		}
		*c = bmp280Raw{true, b.pressure, b.tempC, osrsT, osrsP, rawT, rawP}
	}
	var d [6]byte
	put20(d[0:], c.rawP)
	put20(d[3:], c.rawT)
	return d
}

// put20 stores a 20-bit ADC value as msb, lsb, xlsb[7:4].
func put20(b []byte, v int32) {
	b[0], b[1], b[2] = byte(v>>12), byte(v>>4), byte(v<<4)
}

// bmp280Step is the raw LSB step for an oversampling setting: 16-bit
// resolution at x1 (step 16) up to 20 bits at x16 (step 1).
func bmp280Step(osrs byte) int32 {
	bits := min(max(int(osrs), 1), 5) + 15
	return 1 << (20 - bits)
}

// bmp280Temp is the datasheet's 32-bit temperature compensation; it returns
// t_fine (the temperature is t_fine/5120 °C).
func bmp280Temp(raw int32) int32 {
	t1, t2, t3 := bmp280Cal[0], bmp280Cal[1], bmp280Cal[2]
	v1 := ((raw>>3 - t1<<1) * t2) >> 11
	v2 := ((((raw>>4 - t1) * (raw>>4 - t1)) >> 12) * t3) >> 14
	return v1 + v2
}

// bmp280Press is the datasheet's 64-bit pressure compensation in Q24.8 Pa,
// kept as int64 so it stays monotonic outside the valid range.
func bmp280Press(raw, tFine int32) int64 {
	c := bmp280Cal
	p1, p2, p3, p4, p5 := int64(c[3]), int64(c[4]), int64(c[5]), int64(c[6]), int64(c[7])
	p6, p7, p8, p9 := int64(c[8]), int64(c[9]), int64(c[10]), int64(c[11])
	v1 := int64(tFine) - 128000
	v2 := v1 * v1 * p6
	v2 += (v1 * p5) << 17
	v2 += p4 << 35
	v1 = (v1*v1*p3)>>8 + (v1*p2)<<12
	v1 = ((int64(1)<<47 + v1) * p1) >> 33
	if v1 == 0 {
		return 0
	}
	p := (((1048576 - int64(raw)) << 31) - v2) * 3125 / v1
	v1 = (p9 * (p >> 13) * (p >> 13)) >> 25
	v2 = (p8 * p) >> 19
	return (p+v1+v2)>>8 + p7<<4
}

// invert20 returns the multiple of step in [0, 2^20) whose f is nearest to
// target; f must be monotonic (increasing if up).
func invert20(f func(int32) float64, target float64, step int32, up bool) int32 {
	n := int32(1<<20) / step
	less := func(k int32) bool { // f(k*step) is before target
		if up {
			return f(k*step) < target
		}
		return f(k*step) > target
	}
	lo, hi := int32(0), n // first k with !less(k)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if less(mid) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	k := min(lo, n-1)
	if k > 0 && math.Abs(f((k-1)*step)-target) <= math.Abs(f(k*step)-target) {
		k--
	}
	return k * step
}

// bmp280InvertTemp returns the raw temperature for tempC and its t_fine.
func bmp280InvertTemp(tempC float64, step int32) (raw, tFine int32) {
	f := func(r int32) float64 { return float64(bmp280Temp(r)) }
	raw = invert20(f, tempC*5120, step, true)
	return raw, bmp280Temp(raw)
}

// bmp280InvertPress returns the raw pressure for pressurePa at t_fine.
func bmp280InvertPress(pressurePa float64, tFine, step int32) int32 {
	f := func(r int32) float64 { return float64(bmp280Press(r, tFine)) }
	return invert20(f, pressurePa*256, step, false)
}
