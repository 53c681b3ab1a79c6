package chips

import (
	"math"
	"testing"
	"time"

	"periph.io/x/devices/v3/mpu9250/reg"
)

// runningMPU returns an MPU9250 past its power-on recovery, woken up.
func runningMPU(t *testing.T) (*MPU9250, *fakeClock) {
	t.Helper()
	clk, now := newFakeClock()
	m := NewMPU9250(now)
	clk.Advance(MPU9250ResetRecovery)
	mustTx(t, m, []byte{reg.MPU9250_PWR_MGMT_1, 0x01}, nil)
	return m, clk
}

// readData burst-reads the 14 data registers as 7 int16 (accel, temp, gyro).
func readData(t *testing.T, m *MPU9250) [7]int16 {
	t.Helper()
	var b [14]byte
	mustTx(t, m, []byte{reg.MPU9250_ACCEL_XOUT_H}, b[:])
	var v [7]int16
	for i := range v {
		v[i] = int16(uint16(b[2*i])<<8 | uint16(b[2*i+1]))
	}
	return v
}

const dps = math.Pi / 180 // rad/s per °/s

func TestMPU9250PowerOn(t *testing.T) {
	clk, now := newFakeClock()
	m := NewMPU9250(now)
	for _, tc := range []struct {
		reg, want byte
	}{
		{reg.MPU9250_WHO_AM_I, 0x71},
		{reg.MPU9250_PWR_MGMT_1, 0x01},
		{reg.MPU9250_PWR_MGMT_2, 0},
		{reg.MPU9250_GYRO_CONFIG, 0},
		{reg.MPU9250_ACCEL_CONFIG, 0},
		{reg.MPU9250_SMPLRT_DIV, 0},
		{reg.MPU9250_USER_CTRL, 0},
		{reg.MPU9250_FIFO_COUNTH, 0},
		{reg.MPU9250_FIFO_COUNTL, 0},
		{reg.MPU9250_SELF_TEST_X_GYRO, mpuGyroSTCode[0]},
		{reg.MPU9250_SELF_TEST_Z_ACCEL, mpuAccelSTCode[2]},
		{reg.MPU9250_XA_OFFSET_H, byte(mpuAccelTrim[0] >> 8)},
		{reg.MPU9250_ZA_OFFSET_L, byte(mpuAccelTrim[2])},
		{reg.MPU9250_ACCEL_ZOUT_H, 0},
	} {
		if got := readReg(t, m, tc.reg); got != tc.want {
			t.Errorf("reg %#02x = %#02x, want %#02x", tc.reg, got, tc.want)
		}
	}
	if m.Running() || readData(t, m) != [7]int16{} {
		t.Fatal("data valid right after power-on")
	}
	clk.Advance(MPU9250ResetRecovery)
	if !m.Running() {
		t.Fatal("not running 100 ms after power-on")
	}
	if got := readData(t, m)[2]; got != 16384 {
		t.Errorf("ACCEL_ZOUT = %d, want 16384", got)
	}
}

func TestMPU9250Scaling(t *testing.T) {
	accel := [3]float64{1.5 * StandardGravity, -0.25 * StandardGravity, StandardGravity}
	gyro := [3]float64{100 * dps, -10 * dps, 0.5 * dps}
	for _, tc := range []struct {
		name  string
		reg   byte
		fs    byte
		want  [3]int16
		first int // index in the data words
	}{
		{"accel ±2g", reg.MPU9250_ACCEL_CONFIG, 0, [3]int16{24576, -4096, 16384}, 0},
		{"accel ±4g", reg.MPU9250_ACCEL_CONFIG, 1, [3]int16{12288, -2048, 8192}, 0},
		{"accel ±8g", reg.MPU9250_ACCEL_CONFIG, 2, [3]int16{6144, -1024, 4096}, 0},
		{"accel ±16g", reg.MPU9250_ACCEL_CONFIG, 3, [3]int16{3072, -512, 2048}, 0},
		{"gyro ±250", reg.MPU9250_GYRO_CONFIG, 0, [3]int16{13100, -1310, 66}, 4},
		{"gyro ±500", reg.MPU9250_GYRO_CONFIG, 1, [3]int16{6550, -655, 33}, 4},
		{"gyro ±1000", reg.MPU9250_GYRO_CONFIG, 2, [3]int16{3280, -328, 16}, 4},
		{"gyro ±2000", reg.MPU9250_GYRO_CONFIG, 3, [3]int16{1640, -164, 8}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := runningMPU(t)
			m.Sense(accel, gyro, 36.53)
			mustTx(t, m, []byte{tc.reg, tc.fs << 3}, nil)
			d := readData(t, m)
			if got := [3]int16(d[tc.first : tc.first+3]); got != tc.want {
				t.Errorf("data = %v, want %v", got, tc.want)
			}
			if want := int16(math.Round(15.53 * 333.87)); d[3] != want {
				t.Errorf("TEMP_OUT = %d, want %d", d[3], want)
			}
		})
	}
}

func TestMPU9250Saturation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		accel, gyro float64
		want        [2]int16
	}{
		{"positive", 3 * StandardGravity, 300 * dps, [2]int16{32767, 32767}},
		{"negative", -3 * StandardGravity, -300 * dps, [2]int16{-32768, -32768}},
		{"NaN", math.NaN(), math.Inf(1), [2]int16{0, 32767}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := runningMPU(t)
			m.Sense([3]float64{tc.accel}, [3]float64{tc.gyro}, 21)
			d := readData(t, m)
			if got := [2]int16{d[0], d[4]}; got != tc.want {
				t.Errorf("ACCEL_X, GYRO_X = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMPU9250HReset(t *testing.T) {
	m, clk := runningMPU(t)
	mustTx(t, m, []byte{reg.MPU9250_ACCEL_CONFIG, 0x08, 0x00}, nil) // ±4g; burst into ACCEL_CONFIG2
	if got := readData(t, m)[2]; got != 8192 {
		t.Fatalf("ACCEL_ZOUT = %d, want 8192", got)
	}
	mustTx(t, m, []byte{reg.MPU9250_PWR_MGMT_1, reg.MPU9250_H_RESET_MASK}, nil)
	for _, tc := range []struct {
		reg, want byte
	}{
		{reg.MPU9250_PWR_MGMT_1, 0x01},
		{reg.MPU9250_ACCEL_CONFIG, 0},
	} {
		if got := readReg(t, m, tc.reg); got != tc.want {
			t.Errorf("after H_RESET reg %#02x = %#02x, want %#02x", tc.reg, got, tc.want)
		}
	}
	for _, tc := range []struct {
		advance time.Duration
		running bool
		accelZ  int16
	}{
		{0, false, 0},
		{MPU9250ResetRecovery - time.Nanosecond, false, 0},
		{time.Nanosecond, true, 16384},
	} {
		clk.Advance(tc.advance)
		if got := m.Running(); got != tc.running {
			t.Errorf("%v after reset: Running = %v, want %v", time.Duration(clk.Now()), got, tc.running)
		}
		if got := readData(t, m)[2]; got != tc.accelZ {
			t.Errorf("%v after reset: ACCEL_ZOUT = %d, want %d", time.Duration(clk.Now()), got, tc.accelZ)
		}
	}
}

func TestMPU9250SleepFreezes(t *testing.T) {
	for _, tc := range []struct {
		name string
		pwr1 byte
	}{
		{"SLEEP", 0x41},
		{"CLKSEL=7", 0x07},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := runningMPU(t)
			before := readData(t, m)
			mustTx(t, m, []byte{reg.MPU9250_PWR_MGMT_1, tc.pwr1}, nil)
			m.Sense([3]float64{1, 2, 3}, [3]float64{1, 2, 3}, 50)
			if m.Running() {
				t.Error("Running while stopped")
			}
			if got := readData(t, m); got != before {
				t.Errorf("data while stopped = %v, want frozen %v", got, before)
			}
			mustTx(t, m, []byte{reg.MPU9250_PWR_MGMT_1, 0x01}, nil)
			if got := readData(t, m); got == before {
				t.Error("data still frozen after wake-up")
			}
		})
	}
}

func TestMPU9250PwrMgmt2(t *testing.T) {
	accel := [3]float64{1, 2, 3}
	gyro := [3]float64{0.1, 0.2, 0.3}
	for _, tc := range []struct {
		name     string
		pwr2     byte
		disabled [7]bool
	}{
		{"none", 0x00, [7]bool{}},
		{"XA", 0x20, [7]bool{0: true}},
		{"YA", 0x10, [7]bool{1: true}},
		{"ZA", 0x08, [7]bool{2: true}},
		{"XG", 0x04, [7]bool{4: true}},
		{"YG", 0x02, [7]bool{5: true}},
		{"ZG (periph Init)", 0x01, [7]bool{6: true}},
		{"all", 0x3F, [7]bool{true, true, true, false, true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := runningMPU(t)
			m.Sense(accel, gyro, 30)
			mustTx(t, m, []byte{reg.MPU9250_PWR_MGMT_2, tc.pwr2}, nil)
			for i, v := range readData(t, m) {
				if got := v == 0; got != tc.disabled[i] {
					t.Errorf("word %d = %d, want disabled=%v", i, v, tc.disabled[i])
				}
			}
		})
	}
}

func TestMPU9250Offsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    []byte
		word int
		want int16
	}{
		{"gyro X offset at ±250", []byte{reg.MPU9250_XG_OFFSET_H, 0x00, 0x10}, 4, 64},
		{"gyro Z offset negative", []byte{reg.MPU9250_ZG_OFFSET_H, 0xFF, 0xF0}, 6, -64},
		{"accel Z trim +0.5 g", []byte{reg.MPU9250_ZA_OFFSET_H, byte((mpuAccelTrim[2] + 1024) >> 8), byte(mpuAccelTrim[2])}, 2, 24576},
		{"accel self-test X", []byte{reg.MPU9250_ACCEL_CONFIG, 0x80}, 0, int16(math.Round(mpuSelfTest(mpuAccelSTCode[0], 0)))},
		{"gyro self-test Y", []byte{reg.MPU9250_GYRO_CONFIG, 0x40}, 5, int16(math.Round(mpuSelfTest(mpuGyroSTCode[1], 0)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := runningMPU(t)
			mustTx(t, m, tc.w, nil)
			if got := readData(t, m)[tc.word]; got != tc.want {
				t.Errorf("word %d = %d, want %d", tc.word, got, tc.want)
			}
		})
	}
}

func TestMPU9250DataReady(t *testing.T) {
	m, clk := runningMPU(t)
	mustTx(t, m, []byte{reg.MPU9250_SMPLRT_DIV, 4, 0x03}, nil) // 200 Hz, DLPF 3
	for _, tc := range []struct {
		advance time.Duration
		want    byte
	}{
		{0, 1},
		{0, 0}, // cleared by the previous read
		{4 * time.Millisecond, 0},
		{time.Millisecond, 1},
		{time.Millisecond, 0},
	} {
		clk.Advance(tc.advance)
		if got := readReg(t, m, reg.MPU9250_INT_STATUS); got != tc.want {
			t.Errorf("at %v INT_STATUS = %#02x, want %#02x", time.Duration(clk.Now()), got, tc.want)
		}
	}
}

func TestMPU9250ReadOnlyWritesIgnored(t *testing.T) {
	m, _ := runningMPU(t)
	for _, r := range []byte{reg.MPU9250_WHO_AM_I, reg.MPU9250_ACCEL_ZOUT_H, reg.MPU9250_GYRO_XOUT_H, reg.MPU9250_FIFO_COUNTH} {
		mustTx(t, m, []byte{r, 0x55}, nil)
	}
	if got := readReg(t, m, reg.MPU9250_WHO_AM_I); got != 0x71 {
		t.Errorf("WHO_AM_I = %#02x after a write, want 0x71", got)
	}
	if got := readData(t, m)[2]; got != 16384 {
		t.Errorf("ACCEL_ZOUT = %d after a write, want 16384", got)
	}
}

func TestMPU9250NACK(t *testing.T) {
	testNACK(t, func() Device {
		_, now := newFakeClock()
		return NewMPU9250(now)
	}, []nackCase{
		{"empty", nil, 0},
		{"read without pointer", nil, 2},
		{"reserved 0x03", []byte{0x03}, 1},
		{"reserved 0x39", []byte{0x39, 0}, 0},
		{"reserved 0x76", []byte{0x76}, 1},
		{"beyond the map 0x80", []byte{0x80}, 1},
		{"beyond the map 0xFF", []byte{0xFF, 1}, 0},
		{"burst write into reserved", []byte{reg.MPU9250_SELF_TEST_Z_GYRO, 1, 2}, 0},
	})
}

func FuzzMPU9250Tx(f *testing.F) {
	f.Add([]byte{0x09, reg.MPU9250_PWR_MGMT_1, 0x80})
	f.Add([]byte{0x71, reg.MPU9250_ACCEL_XOUT_H})
	f.Add([]byte{0x02, reg.MPU9250_PWR_MGMT_1, 0x41, 0x31, reg.MPU9250_INT_STATUS})
	f.Add([]byte{0x03, 0x7E, 1, 2, 0xF9, 0x74})
	f.Add([]byte{0x01, 0xFF, 0x07, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk, now := newFakeClock()
		m := NewMPU9250(now)
		fuzzTx(t, m, data, func() {
			clk.Advance(10 * time.Millisecond)
			m.Sense([3]float64{float64(len(data)), math.Inf(-1), math.NaN()}, [3]float64{1e9}, -1e9)
			_ = m.Running()
		})
	})
}
