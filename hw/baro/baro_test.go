package baro

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The datasheet's worked example (BST-BMP280-DS001, table in section 8.2):
// these trimming values with adc_T=519888 and adc_P=415148 give 25.08 °C and
// 100653.27 Pa.
func datasheetCalibration() []byte {
	var b []byte
	for _, v := range []int{27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000} {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(v)))
	}
	return b
}

func raw20(v int32) []byte { return []byte{byte(v >> 12), byte(v >> 4), byte(v << 4)} }

func attachOps(ctrl byte) []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x58}},
		{Addr: 0x76, W: []byte{0xF4}, R: []byte{ctrl}},
		{Addr: 0x76, W: []byte{0x88}, R: datasheetCalibration()},
	}
}

func TestDatasheetExample(t *testing.T) {
	data := append(raw20(415148), raw20(519888)...)
	bus := &i2ctest.Playback{Ops: append(attachOps(0x57), i2ctest.IO{Addr: 0x76, W: []byte{0xF7}, R: data})}
	d, err := Attach(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, temp, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(temp-25.08) > 0.005 {
		t.Errorf("temperature %v °C, want 25.08", temp)
	}
	if math.Abs(p-100653.27) > 0.05 {
		t.Errorf("pressure %v Pa, want 100653.27", p)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAttachRefusesSleepingChip(t *testing.T) {
	bus := &i2ctest.Playback{Ops: attachOps(0x54), DontPanic: true} // forced/sleep mode bits 00
	if _, err := Attach(bus, nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
}

func TestWrongChip(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x60}}}} // a BME280
	if _, err := Attach(bus, nil); err == nil {
		t.Fatal("attached to a chip that is not a BMP280")
	}
}

func TestNoMeasurementYet(t *testing.T) {
	data := append(raw20(0x80000), raw20(0x80000)...)
	bus := &i2ctest.Playback{Ops: append(attachOps(0x57), i2ctest.IO{Addr: 0x76, W: []byte{0xF7}, R: data})}
	d, err := Attach(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Read(); err == nil {
		t.Fatal("read the reset value as a measurement")
	}
}

func TestAltitude(t *testing.T) {
	for _, h := range []float64{0, 1, 2, 10, 100} {
		p := SeaLevelPa * math.Pow(1-2.25577e-5*h, 5.25588)
		if got := Altitude(p, SeaLevelPa); math.Abs(got-h) > 0.01 {
			t.Errorf("Altitude at %v m = %v", h, got)
		}
	}
}
