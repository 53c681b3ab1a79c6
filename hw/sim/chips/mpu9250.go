package chips

import (
	"fmt"
	"math"
	"sync"
	"time"

	"periph.io/x/devices/v3/mpu9250/reg"
)

// MPU9250 constants.
const (
	// MPU9250WhoAmIValue is what WHO_AM_I (0x75) reads.
	MPU9250WhoAmIValue byte = 0x71
	// MPU9250ResetRecovery is how long the data registers stay zero after
	// power-on or H_RESET.
	MPU9250ResetRecovery = 100 * time.Millisecond
	// StandardGravity is g0 in m/s².
	StandardGravity = 9.80665
)

// mpuKind classifies a register.
type mpuKind uint8

const (
	mpuReserved mpuKind = iota // not acknowledged
	mpuRW                      // read/write
	mpuRO                      // read-only: writes are acknowledged and ignored
)

// mpu9250Kind returns the kind of register r (register map rev 1.6).
func mpu9250Kind(r byte) mpuKind {
	switch {
	case r <= reg.MPU9250_SELF_TEST_Z_GYRO,
		r >= reg.MPU9250_SELF_TEST_X_ACCEL && r <= reg.MPU9250_SELF_TEST_Z_ACCEL,
		r >= reg.MPU9250_XG_OFFSET_H && r <= reg.MPU9250_WOM_THR,
		r >= reg.MPU9250_FIFO_EN && r <= reg.MPU9250_I2C_SLV4_CTRL,
		r == reg.MPU9250_INT_PIN_CFG, r == reg.MPU9250_INT_ENABLE,
		r >= reg.MPU9250_I2C_SLV0_DO && r <= reg.MPU9250_PWR_MGMT_2,
		r == reg.MPU9250_FIFO_R_W,
		r == reg.MPU9250_XA_OFFSET_H, r == reg.MPU9250_XA_OFFSET_L,
		r == reg.MPU9250_YA_OFFSET_H, r == reg.MPU9250_YA_OFFSET_L,
		r == reg.MPU9250_ZA_OFFSET_H, r == reg.MPU9250_ZA_OFFSET_L:
		return mpuRW
	case r == reg.MPU9250_I2C_SLV4_DI, r == reg.MPU9250_I2C_MST_STATUS,
		r >= reg.MPU9250_INT_STATUS && r <= reg.MPU9250_EXT_SENS_DATA_23,
		r == reg.MPU9250_FIFO_COUNTH, r == reg.MPU9250_FIFO_COUNTL,
		r == reg.MPU9250_WHO_AM_I:
		return mpuRO
	}
	return mpuReserved
}

// Factory values of the simulated part: self-test codes (SELF_TEST_*) and
// accelerometer trims (XA/YA/ZA_OFFSET). The trims exactly cancel the
// simulated sensor's bias, so only changes to them shift the output.
var (
	mpuGyroSTCode  = [3]byte{0x6A, 0x6F, 0x73}
	mpuAccelSTCode = [3]byte{0x58, 0x5C, 0x66}
	mpuAccelTrim   = [3]uint16{0x1A4E, 0xE5B3, 0x2C18}
)

// mpuGyroSens is the gyro sensitivity in LSB/(°/s) per FS_SEL.
var mpuGyroSens = [4]float64{131, 65.5, 32.8, 16.4}

// MPU9250 models the accelerometer, gyroscope and temperature sensor of the
// InvenSense MPU-9250 on I2C.
//
// Data registers (ACCEL_XOUT_H 0x3B .. GYRO_ZOUT_L 0x48) read zeros from
// power-on or H_RESET until MPU9250ResetRecovery has passed; when the chip
// is put to sleep (SLEEP or CLKSEL=7) they freeze at the last sample. Axes
// disabled in PWR_MGMT_2 read zero, as does TEMP_OUT with PD_PTAT set.
// Writes to read-only registers are acknowledged and ignored, as the chip
// does; unknown and reserved registers are not acknowledged. The FIFO, the
// digital low-pass filters, wake-on-motion and the AK8963 magnetometer
// (bypass or I2C master) are not modelled: FIFO_COUNT reads 0.
// INT_STATUS.RAW_DATA_RDY is set once per sample period (from SMPLRT_DIV,
// CONFIG and GYRO_CONFIG) and cleared by reading INT_STATUS.
type MPU9250 struct {
	now Clock

	mu       sync.Mutex
	regs     [128]byte // read/write registers
	ptr      byte
	ptrSet   bool
	readyAt  int64    // data registers valid from then on
	frozen   [14]byte // data registers while not running
	drdySeen int64    // sample index last reported by INT_STATUS
	accel    [3]float64
	gyro     [3]float64
	tempC    float64
}

// NewMPU9250 returns an MPU9250 just powered on: registers at the register
// map's reset values (all 0 except PWR_MGMT_1=0x01, WHO_AM_I=0x71 and the
// factory self-test and accelerometer trim values), data valid after
// MPU9250ResetRecovery. It senses level rest at 25 °C until Sense is called.
func NewMPU9250(now Clock) *MPU9250 {
	m := &MPU9250{now: now, accel: [3]float64{0, 0, StandardGravity}, tempC: 25}
	m.reset(now())
	return m
}

// reset puts every register to its reset value and starts the recovery.
func (m *MPU9250) reset(now int64) {
	m.regs = [128]byte{}
	m.regs[reg.MPU9250_PWR_MGMT_1] = reg.POWER_MANAGEMENT_1_RESET_VAL
	for i := range 3 {
		m.regs[reg.MPU9250_SELF_TEST_X_GYRO+i] = mpuGyroSTCode[i]
		m.regs[reg.MPU9250_SELF_TEST_X_ACCEL+i] = mpuAccelSTCode[i]
		m.regs[reg.MPU9250_XA_OFFSET_H+3*i] = byte(mpuAccelTrim[i] >> 8)
		m.regs[reg.MPU9250_XA_OFFSET_L+3*i] = byte(mpuAccelTrim[i])
	}
	m.frozen = [14]byte{}
	m.readyAt = now + int64(MPU9250ResetRecovery)
	m.drdySeen = -1
}

// Sense sets what the sensors measure: accel is the specific force in the
// sensor frame in m/s² (level at rest: {0, 0, +9.80665}), gyro the angular
// rate in rad/s, tempC the die temperature.
func (m *MPU9250) Sense(accel, gyro [3]float64, tempC float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.accel, m.gyro, m.tempC = accel, gyro, tempC
}

// Running reports whether the chip currently produces valid data: awake,
// clock running and not recovering from a reset.
func (m *MPU9250) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running(m.now())
}

func (m *MPU9250) running(now int64) bool {
	p := m.regs[reg.MPU9250_PWR_MGMT_1]
	return p&reg.MPU9250_SLEEP_MASK == 0 &&
		p&reg.MPU9250_CLKSEL_MASK != 7 &&
		now >= m.readyAt
}

// Tx implements Device. The chip always auto-increments, except on
// FIFO_R_W.
func (m *MPU9250) Tx(w, r []byte) error {
	if len(w) == 0 && len(r) == 0 {
		return fmt.Errorf("mpu9250: empty transaction: %w", ErrNACK)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(w) > 0 {
		if w[0] >= byte(len(m.regs)) || mpu9250Kind(w[0]) == mpuReserved {
			return fmt.Errorf("mpu9250: reserved register %#02x: %w", w[0], ErrNACK)
		}
		m.ptr, m.ptrSet = w[0], true
		for i, v := range w[1:] {
			if err := m.write(m.ptr, v, now); err != nil {
				return fmt.Errorf("mpu9250: data byte %d: %w", i, err)
			}
			m.advance()
		}
	} else if !m.ptrSet {
		return fmt.Errorf("mpu9250: read with no register pointer set: %w", ErrNACK)
	}
	if len(r) > 0 {
		// A burst read sees a single sampling instant.
		data := m.frozen
		if m.running(now) {
			data = m.live()
		}
		for i := range r {
			r[i] = m.read(m.ptr, &data, now)
			m.advance()
		}
	}
	return nil
}

func (m *MPU9250) advance() {
	if m.ptr != reg.MPU9250_FIFO_R_W {
		m.ptr++
	}
}

func (m *MPU9250) write(r, v byte, now int64) error {
	if r >= byte(len(m.regs)) {
		return fmt.Errorf("reserved register %#02x: %w", r, ErrNACK)
	}
	switch mpu9250Kind(r) {
	case mpuReserved:
		return fmt.Errorf("reserved register %#02x: %w", r, ErrNACK)
	case mpuRO:
		return nil
	}
	switch r {
	case reg.MPU9250_PWR_MGMT_1:
		if v&reg.MPU9250_H_RESET_MASK != 0 {
			m.reset(now)
			return nil
		}
		if m.running(now) {
			m.frozen = m.live() // hold the last sample if this stops the chip
		}
		m.regs[r] = v
	case reg.MPU9250_USER_CTRL:
		m.regs[r] = v &^ (reg.MPU9250_FIFO_RST_MASK | reg.MPU9250_I2C_MST_RST_MASK | reg.MPU9250_SIG_COND_RST_MASK)
	case reg.MPU9250_SIGNAL_PATH_RESET, reg.MPU9250_FIFO_R_W:
		// Self-clearing resets; the FIFO is not modelled.
	default:
		m.regs[r] = v
	}
	return nil
}

func (m *MPU9250) read(r byte, data *[14]byte, now int64) byte {
	switch {
	case r >= reg.MPU9250_ACCEL_XOUT_H && r <= reg.MPU9250_GYRO_ZOUT_L:
		return data[r-reg.MPU9250_ACCEL_XOUT_H]
	case r == reg.MPU9250_INT_STATUS:
		if !m.running(now) {
			return 0
		}
		idx := (now - m.readyAt) / m.samplePeriod()
		if idx == m.drdySeen {
			return 0
		}
		m.drdySeen = idx
		return reg.MPU9250_RAW_DATA_RDY_INT_MASK
	case r == reg.MPU9250_WHO_AM_I:
		return MPU9250WhoAmIValue
	case r >= byte(len(m.regs)) || mpu9250Kind(r) != mpuRW:
		return 0 // other read-only registers (FIFO, I2C master) and reserved
	}
	return m.regs[r]
}

// samplePeriod returns the sample period in ns.
func (m *MPU9250) samplePeriod() int64 {
	dlpf := m.regs[reg.MPU9250_CONFIG] & reg.MPU9250_DLPF_CFG_MASK
	fchoiceB := m.regs[reg.MPU9250_GYRO_CONFIG] & reg.MPU9250_FCHOICE_B_MASK
	switch {
	case fchoiceB != 0:
		return int64(time.Second / 32000)
	case dlpf == 0 || dlpf == 7:
		return int64(time.Second / 8000)
	}
	return int64(time.Millisecond) * (1 + int64(m.regs[reg.MPU9250_SMPLRT_DIV]))
}

// live returns the data registers for the sensed values.
func (m *MPU9250) live() [14]byte {
	var d [14]byte
	pm1 := m.regs[reg.MPU9250_PWR_MGMT_1]
	pm2 := m.regs[reg.MPU9250_PWR_MGMT_2]
	aCfg := m.regs[reg.MPU9250_ACCEL_CONFIG]
	gCfg := m.regs[reg.MPU9250_GYRO_CONFIG]
	afs := aCfg & reg.MPU9250_ACCEL_FS_SEL_MASK >> 3
	gfs := gCfg & reg.MPU9250_GYRO_FS_SEL_MASK >> 3
	aSens := float64(int(16384) >> afs)
	gSens := mpuGyroSens[gfs]
	for i := range 3 {
		if pm2&(reg.MPU9250_DISABLE_XA_MASK>>i) == 0 {
			v := (m.accel[i]/StandardGravity + m.accelTrimDelta(i)) * aSens
			if aCfg&(reg.MPU9250_AX_ST_EN_MASK>>i) != 0 {
				v += mpuSelfTest(mpuAccelSTCode[i], afs)
			}
			putInt16(d[2*i:], v)
		}
		if pm2&(reg.MPU9250_DISABLE_XG_MASK>>i) == 0 {
			v := m.gyro[i] * 180 / math.Pi * gSens
			v += float64(m.word(reg.MPU9250_XG_OFFSET_H+2*i)) * 4 / float64(int(1)<<gfs)
			if gCfg&(reg.MPU9250_XGYRO_CTEN_MASK>>i) != 0 {
				v += mpuSelfTest(mpuGyroSTCode[i], gfs)
			}
			putInt16(d[8+2*i:], v)
		}
	}
	if pm1&reg.MPU9250_PD_PTAT_MASK == 0 {
		putInt16(d[6:], (m.tempC-21)*333.87)
	}
	return d
}

// word returns the big-endian int16 stored at registers r, r+1.
func (m *MPU9250) word(r int) int16 {
	return int16(uint16(m.regs[r])<<8 | uint16(m.regs[r+1]))
}

// accelTrimDelta returns, in g, how far XA/YA/ZA_OFFSET of axis i have been
// moved from the factory trim. Bits 15:1 count 0.98 mg (1/1024 g) steps.
func (m *MPU9250) accelTrimDelta(i int) float64 {
	v := m.word(reg.MPU9250_XA_OFFSET_H+3*i) >> 1
	return float64(v-int16(mpuAccelTrim[i])>>1) / 1024
}

// mpuSelfTest returns the self-test response in LSB for a factory code at
// full-scale setting fs: (2620/2^fs) * 1.01^(code-1).
func mpuSelfTest(code, fs byte) float64 {
	if code == 0 {
		return 0
	}
	return 2620 / float64(int(1)<<fs) * math.Pow(1.01, float64(code)-1)
}

// putInt16 stores round(v), saturated to int16, big-endian.
func putInt16(b []byte, v float64) {
	v = math.Round(math.Max(math.MinInt16, math.Min(math.MaxInt16, v)))
	if math.IsNaN(v) {
		v = 0
	}
	u := uint16(int16(v))
	b[0], b[1] = byte(u>>8), byte(u)
}
