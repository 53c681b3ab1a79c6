package camera_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/skyswap/skyswap/hw/camera"
	"github.com/skyswap/skyswap/hw/sim/chips"
	"github.com/skyswap/skyswap/hw/sim/chips/chipstest"
)

// emulated is the simulator's Lepton model on an I2C bus and an SPI port,
// in process, its clock advanced by each transfer's time on a 20 MHz wire.
// Each new image is painted 8000 + its frame counter everywhere but pixel
// (0, 0), which holds 9000.
func emulated(t *testing.T) (*chipstest.Bus, *chipstest.SPIPort, *chips.Lepton, *commands) {
	t.Helper()
	clk := &chipstest.Clock{}
	lep := chips.NewLepton(clk.Now, func(frame uint32, _ int64, pix []uint16) {
		for i := range pix {
			pix[i] = 8000 + uint16(frame)
		}
		pix[0] = 9000
	})
	cmds := &commands{l: lep}
	bus := &chipstest.Bus{Devs: map[uint16]chips.Device{chips.LeptonAddr: cmds}}
	port := &chipstest.SPIPort{Dev: lep, OnTx: func(n int) { clk.Advance(chipstest.WireTime(n, 20*physic.MegaHertz)) }}
	clk.Advance(chips.LeptonBootTime + time.Millisecond)
	return bus, port, lep, cmds
}

// commands records the CCI commands the camera ran.
type commands struct {
	l   *chips.Lepton
	ran []uint16
}

func (c *commands) Tx(w, r []byte) (err error) {
	c.ran, err = c.l.TxCommands(w, r, c.ran)
	return err
}

// changes returns the commands from i on that are SET or RUN (the low two
// bits of a command word: 0 GET, 1 SET, 2 RUN).
func (c *commands) changes(i int) []uint16 {
	var out []uint16
	for _, cmd := range c.ran[i:] {
		if cmd&3 != 0 {
			out = append(out, cmd)
		}
	}
	return out
}

// TestAgainstEmulator runs the driver against the emulated camera: Attach
// refuses a camera nobody configured; Init configures it; frames come as
// new images (each third frame counter); a second reader attaches with CCI
// reads only and reads on where the first stopped; corrupt packets are
// dropped, counted and resynchronised.
func TestAgainstEmulator(t *testing.T) {
	bus, port, lep, cmds := emulated(t)
	ctx := context.Background()
	opts := &camera.Opts{ResyncPause: time.Millisecond, IdlePause: -1, SyncTimeout: time.Hour}
	if _, err := camera.AttachOpts(port, bus, opts); !errors.Is(err, camera.ErrNotRunning) {
		t.Fatalf("Attach to an unconfigured camera: %v, want ErrNotRunning", err)
	}
	c, err := camera.InitOpts(ctx, port, bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds.changes(0)) == 0 {
		t.Fatalf("Init configured nothing: ran %x", cmds.ran)
	}
	var f camera.Frame
	var prev uint32
	for i := range 4 {
		if err := c.Next(ctx, &f); err != nil {
			t.Fatal(err)
		}
		// The image is the one rendered at this frame or up to two
		// before (repeats carry the counter on).
		if d := int(f.Count) - int(f.Pix[1]-8000); f.Pix[0] != 9000 || d < 0 || d > 2 {
			t.Fatalf("frame %d: pixels %d, %d", f.Count, f.Pix[0], f.Pix[1])
		}
		if i > 0 && f.Count-prev != 3 {
			t.Fatalf("frame counter %d after %d: want the next new image, 3 frames on", f.Count, prev)
		}
		prev = f.Count
	}
	c.Close()

	// The next owner: CCI reads only, and the stream goes on.
	before := len(cmds.ran)
	c2, err := camera.AttachOpts(port, bus, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if len(cmds.ran) == before {
		t.Fatal("Attach asked the camera nothing")
	}
	if ch := cmds.changes(before); len(ch) != 0 {
		t.Fatalf("Attach changed the streaming camera: commands %x", ch)
	}
	if err := c2.Next(ctx, &f); err != nil {
		t.Fatal(err)
	}
	if f.Count <= prev {
		t.Fatalf("the second reader's first frame %d is not after %d", f.Count, prev)
	}

	lep.Corrupt(chips.LeptonFaultCRC, 1)
	for range 3 {
		if err := c2.Next(ctx, &f); err != nil {
			t.Fatal(err)
		}
	}
	if st := c2.Stats(); st.CRCErrors != 1 || st.Resyncs != 1 || st.Frames != 4 {
		t.Fatalf("after one corrupt packet: %+v", st)
	}
}
