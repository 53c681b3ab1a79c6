package imu

import (
	"context"
	"errors"
	"math"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// Traffic recorded from this driver against the virtual drone's MPU9250
// model and checked against the MPU-9250 register map (rev. 1.6).

func TestInitTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("Init waits 100 ms for the reset")
	}
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x68, W: []byte{0x75}, R: []byte{0x71}},
		{Addr: 0x68, W: []byte{0x6B, 0x80}}, // H_RESET
		{Addr: 0x68, W: []byte{0x6B, 0x01}}, // PLL clock, awake
		{Addr: 0x68, W: []byte{0x6C, 0x00}}, // every axis on
		{Addr: 0x68, W: []byte{0x1A, 0x02}}, // DLPF 92 Hz
		{Addr: 0x68, W: []byte{0x19, 0x00}}, // 1 kHz sample rate
		{Addr: 0x68, W: []byte{0x1B, 0x10}}, // ±1000 °/s
		{Addr: 0x68, W: []byte{0x1C, 0x10}}, // ±8 g
		{Addr: 0x68, W: []byte{0x1D, 0x03}},
	}}
	if _, err := Init(context.Background(), bus, nil); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAttach(t *testing.T) {
	cases := []struct {
		name    string
		id      byte
		pwr     []byte
		cfg     []byte
		wantErr error
	}{
		{"running", 0x71, []byte{0x01, 0}, []byte{0x10, 0x10}, nil},
		{"not an MPU9250", 0x68, nil, nil, errors.New("any")},
		{"asleep", 0x71, []byte{0x41, 0}, []byte{0x10, 0x10}, ErrNotRunning},
		{"axis off", 0x71, []byte{0x01, 0x01}, []byte{0x10, 0x10}, ErrNotRunning},
		{"gyro range", 0x71, []byte{0x01, 0}, []byte{0x18, 0x10}, ErrNotRunning},
		{"accel range", 0x71, []byte{0x01, 0}, []byte{0x10, 0x00}, ErrNotRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ops := []i2ctest.IO{{Addr: 0x68, W: []byte{0x75}, R: []byte{tc.id}}}
			if tc.pwr != nil {
				ops = append(ops,
					i2ctest.IO{Addr: 0x68, W: []byte{0x6B}, R: tc.pwr},
					i2ctest.IO{Addr: 0x68, W: []byte{0x1B}, R: tc.cfg})
			}
			bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
			_, err := Attach(bus, nil)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatal(err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("attached")
			case errors.Is(tc.wantErr, ErrNotRunning) && !errors.Is(err, ErrNotRunning):
				t.Fatalf("err = %v, want ErrNotRunning", err)
			}
			if err := bus.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReadScales(t *testing.T) {
	// +1 g on Z at ±8 g is 4096 LSB; 100 °/s on X at ±1000 °/s is 3277 LSB;
	// temperature 21 °C is 0.
	raw := []byte{0, 0, 0, 0, 0x10, 0x00, 0, 0, 0x0C, 0xCD, 0, 0, 0xF3, 0x33}
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x68, W: []byte{0x75}, R: []byte{0x71}},
		{Addr: 0x68, W: []byte{0x6B}, R: []byte{0x01, 0}},
		{Addr: 0x68, W: []byte{0x1B}, R: []byte{0x10, 0x10}},
		{Addr: 0x68, W: []byte{0x3B}, R: raw},
	}}
	d, err := Attach(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	near := func(got, want, tol float64) bool { return math.Abs(got-want) <= tol }
	if !near(s.Accel[2], 9.80665, 0.01) || !near(s.Accel[0], 0, 1e-9) {
		t.Errorf("accel = %v", s.Accel)
	}
	if !near(s.Gyro[0], 100*math.Pi/180, 0.001) || !near(s.Gyro[2], -100*math.Pi/180, 0.001) {
		t.Errorf("gyro = %v", s.Gyro)
	}
	if !near(s.TempC, 21, 1e-9) {
		t.Errorf("temp = %v", s.TempC)
	}
}

func TestOptsErrors(t *testing.T) {
	for name, o := range map[string]Opts{
		"accel range": {AccelRangeG: 3},
		"gyro range":  {GyroRangeDP: 300},
		"dlpf":        {DLPF: 9},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Attach(&i2ctest.Playback{}, &o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
