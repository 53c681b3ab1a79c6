package chips_test

import (
	"image"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/lepton"
	"periph.io/x/devices/v3/lepton/cci"
	"periph.io/x/devices/v3/lepton/image14bit"

	"github.com/skyswap/skyswap/hw/sim/chips"
	"github.com/skyswap/skyswap/hw/sim/chips/chipstest"
)

// gradient draws row y of unique frame f as 8000 + 10·y + f: periph's
// NextFrame sees a new image every third frame.
func gradient(frame uint32, _ int64, pix []uint16) {
	for i := range pix {
		pix[i] = uint16(8000 + 10*(i/chips.LeptonWidth) + int(frame))
	}
}

func newGray14() *image14bit.Gray14 {
	return image14bit.NewGray14(image.Rect(0, 0, chips.LeptonWidth, chips.LeptonHeight))
}

// periphLepton runs periph's lepton driver on a booted model over
// chipstest's bus and port. Each SPI transfer advances the clock by its
// time on a 20 MHz wire, so the stream moves as fast as the reader reads.
func periphLepton(t *testing.T) (*lepton.Dev, *chips.Lepton, *chipstest.Clock) {
	t.Helper()
	clk := &chipstest.Clock{}
	l := chips.NewLepton(clk.Now, gradient)
	clk.Advance(chips.LeptonBootTime)
	port := &chipstest.SPIPort{Dev: l, OnTx: func(n int) {
		clk.Advance(chipstest.WireTime(n, 20*physic.MegaHertz))
	}}
	bus := &chipstest.Bus{Devs: map[uint16]chips.Device{chips.LeptonAddr: l}}
	dev, err := lepton.New(port, bus)
	if err != nil {
		t.Fatal(err)
	}
	return dev, l, clk
}

// TestPeriphLepton runs periph's own driver: New (status, AGC off,
// telemetry on as a header), then NextFrame, whose telemetry must parse and
// whose pixels are what the model rendered; successive NextFrames skip the
// repeated frames.
func TestPeriphLepton(t *testing.T) {
	t.Parallel()
	dev, _, _ := periphLepton(t)
	f := &lepton.Frame{Gray14: newGray14()}
	var counts []uint32
	for i := range 3 {
		if err := dev.NextFrame(f); err != nil {
			t.Fatalf("NextFrame %d: %v", i, err)
		}
		m := f.Metadata
		counts = append(counts, m.FrameCount)
		if m.Temp != physic.Temperature(chips.LeptonFPATemp)*10*physic.MilliKelvin ||
			m.TempHousing != physic.Temperature(chips.LeptonHousingTemp)*10*physic.MilliKelvin {
			t.Fatalf("frame %d temperatures %v / %v", i, m.Temp, m.TempHousing)
		}
		if m.FFCState != cci.FFCNever || m.FFCDesired || m.Overtemp {
			t.Fatalf("frame %d FFC state %v desired %v overtemp %v", i, m.FFCState, m.FFCDesired, m.Overtemp)
		}
		wantUp := chips.LeptonBootTime + time.Duration(m.FrameCount)*chips.LeptonFramePeriod
		if d := m.SinceStartup - wantUp; d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("frame %d: since startup %v, want %v", i, m.SinceStartup, wantUp)
		}
		img := uint16(m.FrameCount - m.FrameCount%3)
		for _, p := range []image.Point{{0, 0}, {79, 0}, {40, 30}, {0, 59}} {
			want := 8000 + 10*uint16(p.Y) + img
			if got := uint16(f.Intensity14At(p.X, p.Y)); got != want {
				t.Fatalf("frame %d pixel %v = %d, want %d", i, p, got, want)
			}
		}
		if m.AvgValue != 8000+295+img {
			t.Fatalf("frame %d mean %d, want %d", i, m.AvgValue, 8000+295+img)
		}
	}
	// periph's reader leaves its streaming goroutine running for a moment
	// after a frame, and that goroutine's reads take packets from the next
	// one (the stream is the camera's), so it may miss the first frame of
	// an image and return the second: the counters need not be multiples
	// of 3, but each NextFrame is a new image.
	for i := 1; i < len(counts); i++ {
		if counts[i]/3 <= counts[i-1]/3 {
			t.Fatalf("frame counters %v: want a new image each time", counts)
		}
	}
}

// TestPeriphLeptonCCI round-trips the model's CCI through periph's
// cci.Dev getters and commands.
func TestPeriphLeptonCCI(t *testing.T) {
	t.Parallel()
	dev, l, clk := periphLepton(t)
	clk.Advance(2 * time.Second)
	st, err := dev.GetStatus()
	if err != nil || st.CameraStatus != cci.SystemReady {
		t.Fatalf("GetStatus = %+v, %v", st, err)
	}
	if s, err := dev.GetSerial(); err != nil || s != chips.LeptonSerial {
		t.Fatalf("GetSerial = %#x, %v, want %#x", s, err, chips.LeptonSerial)
	}
	if up, err := dev.GetUptime(); err != nil || up != chips.LeptonBootTime+2*time.Second {
		t.Fatalf("GetUptime = %v, %v", up, err)
	}
	if temp, err := dev.GetTemp(); err != nil || temp.Celsius() < 29.99 || temp.Celsius() > 30.01 {
		t.Fatalf("GetTemp = %v, %v", temp, err)
	}
	if temp, err := dev.GetTempHousing(); err != nil || temp.Celsius() < 28.99 || temp.Celsius() > 29.01 {
		t.Fatalf("GetTempHousing = %v, %v", temp, err)
	}
	m, err := dev.GetFFCModeControl()
	if err != nil {
		t.Fatal(err)
	}
	if m.FFCShutterMode != cci.FFCShutterModeExternal || m.DesiredFFCPeriod != 300*time.Second ||
		m.DesiredFFCTempDelta != 3*physic.Kelvin || !m.VideoFreezeDuringFFC || m.ImminentDelay != 52 {
		t.Fatalf("GetFFCModeControl = %+v", m)
	}
	if m.ElapsedTimeSinceLastFFC < 2*time.Second {
		t.Fatalf("elapsed since the last FFC %v, want the uptime", m.ElapsedTimeSinceLastFFC)
	}
	if _, err := dev.GetShutterPos(); err == nil {
		t.Fatal("GetShutterPos: the model has no shutter position command and must report an error")
	}
	if err := dev.RunFFC(); err != nil {
		t.Fatal(err)
	}
	if st, err := dev.GetStatus(); err != nil || st.CameraStatus != cci.SystemFlatFieldInProcess {
		t.Fatalf("GetStatus during FFC = %+v, %v", st, err)
	}
	clk.Advance(chips.LeptonFFCTime)
	f := &lepton.Frame{Gray14: newGray14()}
	if err := dev.NextFrame(f); err != nil {
		t.Fatal(err)
	}
	if f.Metadata.FFCState != cci.FFCComplete {
		t.Fatalf("telemetry FFC state %v after an FFC, want complete", f.Metadata.FFCState)
	}
	if err := dev.Halt(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(chips.LeptonPowerDownTime)
	if !l.Off() {
		t.Fatal("periph's Halt (OEM power-down) left the camera on")
	}
}
