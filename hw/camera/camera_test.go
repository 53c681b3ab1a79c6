package camera_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/skyswap/skyswap/hw/camera"
	"github.com/skyswap/skyswap/hw/camera/cameratest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// CCI traffic, as periph's cci package sends it (its own tests pin the same
// bytes) and as the Lepton Software IDD defines the registers: STATUS 0x0002
// (bit 0 busy, bits 1-2 boot mode and booted, high byte the last result),
// COMMAND_ID 0x0004, DATA_LENGTH 0x0006, DATA0 0x0008. A command ID's low two
// bits are the type: 00 GET, 01 SET, 10 RUN.
const addr = 0x2A

var (
	booted   = []byte{0x00, 0x06}
	idle     = i2ctest.IO{Addr: addr, W: []byte{0x00, 0x02}, R: booted}
	notReady = []byte{0x00, 0x00}
)

// get is one GET command of words 16-bit words, answered with r.
func get(cmd uint16, r []byte) []i2ctest.IO {
	return []i2ctest.IO{
		idle,
		{Addr: addr, W: []byte{0x00, 0x06, 0x00, byte(len(r) / 2)}},
		{Addr: addr, W: []byte{0x00, 0x04, byte(cmd >> 8), byte(cmd)}},
		idle,
		{Addr: addr, W: []byte{0x00, 0x08}, R: r},
	}
}

// set is one SET command of a 32-bit value, sent least significant word first.
func set(cmd uint16, v []byte) []i2ctest.IO {
	return []i2ctest.IO{
		idle,
		{Addr: addr, W: append([]byte{0x00, 0x08}, v...)},
		{Addr: addr, W: []byte{0x00, 0x06, 0x00, 0x02}},
		{Addr: addr, W: []byte{0x00, 0x04, byte(cmd >> 8), byte(cmd) | 1}},
		idle,
	}
}

var (
	statusReady   = []byte{0, 0, 0, 0, 0, 0, 0, 0} // SYS status: CameraStatus 0 (ready), command count 0
	statusStandby = []byte{0, 2, 0, 0, 0, 0, 0, 0} // 2: low-power mode
	off           = []byte{0, 0, 0, 0}
	on            = []byte{0, 1, 0, 0}
)

func concat(parts ...[]i2ctest.IO) []i2ctest.IO {
	var out []i2ctest.IO
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// attachOps is Attach's traffic against a camera streaming as Init leaves it.
func attachOps() []i2ctest.IO {
	return concat(
		[]i2ctest.IO{idle, idle}, // our boot check, then cci.New's
		get(0x0204, statusReady), // SYS status
		get(0x0100, off),         // AGC enable
		get(0x0218, on),          // telemetry enable
		get(0x021C, off),         // telemetry location: header
	)
}

// fast is the options for fakes: no pauses (they have no chip select).
func fast(packetsPerTx int) *camera.Opts {
	return &camera.Opts{PacketsPerTx: packetsPerTx, ResyncPause: -1, IdlePause: -1, SyncTimeout: time.Hour}
}

func TestInitTraffic(t *testing.T) {
	bus := &i2ctest.Playback{Ops: concat(
		[]i2ctest.IO{{Addr: addr, W: []byte{0x00, 0x02}, R: notReady}}, // still booting
		[]i2ctest.IO{idle, idle}, // booted; cci.New
		get(0x0204, statusReady), // cci.Dev.GetStatus
		set(0x0100, off),         // AGC off: raw 14-bit
		set(0x0218, on),          // telemetry on
		set(0x021C, off),         // telemetry as header
	), DontPanic: true}
	port := &cameratest.Port{Stream: frames(0, 1)}
	c, err := camera.InitOpts(context.Background(), port, bus, fast(24))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if port.Speed != 20*physic.MegaHertz || port.Mode != spi.Mode3 || port.Bits != 8 {
		t.Errorf("SPI connected at %v, %v, %d bits; want 20 MHz, Mode3, 8", port.Speed, port.Mode, port.Bits)
	}
	if port.Transfers != 0 {
		t.Errorf("Init read %d VoSPI transfers; it must leave the video to Next", port.Transfers)
	}
	var f camera.Frame
	if err := c.Next(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Resyncs != 1 || s.Frames != 1 {
		t.Errorf("stats %+v: want the first Next to begin with a resync, then a frame", s)
	}
}

func TestInitBootTimeout(t *testing.T) {
	var ops []i2ctest.IO
	for range 1000 {
		ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{0x00, 0x02}, R: notReady})
	}
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	_, err := camera.InitOpts(context.Background(), &cameratest.Port{}, bus, &camera.Opts{BootTimeout: 20 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a boot timeout", err)
	}
}

// isSetOrRun reports whether a CCI write is a SET or RUN command or writes
// command data: the traffic Attach must never send.
func isSetOrRun(io i2ctest.IO) bool {
	if len(io.W) < 4 { // register pointer for a read
		return false
	}
	reg := uint16(io.W[0])<<8 | uint16(io.W[1])
	switch {
	case reg == 0x0004:
		return io.W[3]&3 != 0
	case reg == 0x0006:
		return false
	default:
		return true // data registers, power
	}
}

func TestAttach(t *testing.T) {
	base := attachOps()
	cases := []struct {
		name    string
		ops     []i2ctest.IO
		wantErr error
	}{
		{"streaming", base, nil},
		{"not booted", []i2ctest.IO{{Addr: addr, W: []byte{0x00, 0x02}, R: notReady}}, camera.ErrNotRunning},
		{"standby", concat([]i2ctest.IO{idle, idle}, get(0x0204, statusStandby)), camera.ErrNotRunning},
		{"AGC on", concat(base[:7], get(0x0100, on)), camera.ErrNotRunning},
		{"telemetry off", concat(base[:12], get(0x0218, off)), camera.ErrNotRunning},
		{"telemetry footer", concat(base[:17], get(0x021C, on)), camera.ErrNotRunning},
		{"no camera", nil, errors.New("any")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			play := &i2ctest.Playback{Ops: tc.ops, DontPanic: true}
			rec := &i2ctest.Record{Bus: play}
			port := &cameratest.Port{}
			c, err := camera.AttachOpts(port, rec, nil)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatal(err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("attached")
			case errors.Is(tc.wantErr, camera.ErrNotRunning) && !errors.Is(err, camera.ErrNotRunning):
				t.Fatalf("err = %v, want ErrNotRunning", err)
			}
			if err := play.Close(); err != nil {
				t.Fatal(err)
			}
			for _, io := range rec.Ops {
				if isSetOrRun(io) {
					t.Errorf("Attach sent %#v: a SET, RUN or command data", io.W)
				}
			}
			if port.Transfers != 0 {
				t.Errorf("Attach read %d VoSPI transfers", port.Transfers)
			}
			if c != nil {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// pix returns frame k's pixels: a gradient that differs from frame to frame.
func pix(k int) []uint16 {
	p := make([]uint16, camera.Width*camera.Height)
	for i := range p {
		x, y := i%camera.Width, i/camera.Width
		p[i] = uint16(7000 + 97*k + 3*x + 5*y)
	}
	return p
}

// tm is the telemetry of stream frame c: the counter runs at 27 Hz, so new
// frames are 3 counts apart.
func tm(count int) cameratest.Telemetry {
	return cameratest.Telemetry{Count: uint32(count), Uptime: time.Duration(count) * 37 * time.Millisecond}
}

// gap is the discard packets between frames: more than a transfer, as on
// the camera (a frame takes ~4 ms to read of a ~37 ms period), which makes
// what a resync drops independent of the transfer size.
const gap = 64

// frames returns a stream of new frames ks[i] with counts 3*ks[i].
func frames(ks ...int) []byte {
	var s []byte
	for _, k := range ks {
		s = cameratest.AppendDiscards(s, gap)
		s = cameratest.AppendFrame(s, pix(k), tm(3*k))
	}
	return s
}

// want is one frame Next should return.
type want struct {
	k     int // pixels of pix(k)
	count int
}

func checkFrame(t *testing.T, got *camera.Frame, w want, prevT int64) {
	t.Helper()
	if got.Count != uint32(w.count) {
		t.Errorf("count %d, want %d", got.Count, w.count)
	}
	if u := time.Duration(w.count) * 37 * time.Millisecond; got.Uptime != u {
		t.Errorf("uptime %v, want %v", got.Uptime, u)
	}
	if !equal(got.Pix, pix(w.k)) {
		t.Errorf("count %d: pixels are not frame %d's", got.Count, w.k)
	}
	if got.T <= 0 || got.T < prevT {
		t.Errorf("T = %d after %d; want CLOCK_MONOTONIC, not decreasing", got.T, prevT)
	}
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// goldenStream is the recording TestGoldenStream decodes: discards before
// sync, a new frame, its two duplicates (counter +1, +2), discards, the next
// new frame, and a frame whose pixels have bits above the 14.
func goldenStream() []byte {
	s := cameratest.AppendDiscards(nil, 5)
	s = cameratest.AppendFrame(s, pix(1), tm(3))
	s = cameratest.AppendDiscards(s, 2)
	s = cameratest.AppendFrame(s, pix(1), tm(4))
	s = cameratest.AppendFrame(s, pix(1), tm(5))
	s = cameratest.AppendDiscards(s, 3)
	s = cameratest.AppendFrame(s, pix(2), tm(6))
	hi := pix(3)
	for i := range hi {
		hi[i] |= 0xC000
	}
	return cameratest.AppendFrame(s, hi, tm(9))
}

func TestGoldenStream(t *testing.T) {
	golden := filepath.Join("testdata", "stream.vospi")
	if *update {
		if err := os.WriteFile(golden, goldenStream(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if !bytes.Equal(stream, goldenStream()) {
		t.Errorf("the encoder no longer produces %s; if the change is intended, run go test -update", golden)
	}
	for _, n := range []int{1, 7, 24, 63} {
		t.Run(spiName(n), func(t *testing.T) {
			c := attach(t, cameratest.Playback(stream, n), fast(n))
			var f camera.Frame
			var prevT int64
			for _, w := range []want{{1, 3}, {2, 6}, {3, 9}} {
				if err := c.Next(context.Background(), &f); err != nil {
					t.Fatal(err)
				}
				checkFrame(t, &f, w, prevT)
				prevT = f.T
			}
			want := camera.Stats{Frames: 3, Duplicates: 2, Discards: 10}
			if got := c.Stats(); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
		})
	}
}

func spiName(n int) string { return fmt.Sprintf("%d packets per transfer", n) }

func attach(t *testing.T, p spi.Port, o *camera.Opts) *camera.Camera {
	t.Helper()
	c, err := camera.AttachOpts(p, &i2ctest.Playback{Ops: attachOps()}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mutate changes packet n of the index-th frame of a stream made by frames.
func mutate(s []byte, index, n int, f func(p []byte)) []byte {
	s = bytes.Clone(s)
	off := ((index+1)*gap + index*camera.PacketsPerFrame + n) * camera.PacketSize
	f(s[off : off+camera.PacketSize])
	return s
}

// recrc recomputes a packet's CRC after a deliberate change.
func recrc(p []byte) {
	q := append([]byte{p[0] & 0x0F, p[1], 0, 0}, p[4:]...)
	crc := cameratest.CRC(q)
	p[2], p[3] = byte(crc>>8), byte(crc)
}

func TestStreamFaults(t *testing.T) {
	four := frames(1, 2, 3, 4)
	cases := []struct {
		name   string
		stream []byte
		want   []want
		stats  camera.Stats // Frames, Duplicates, CRCErrors, SeqErrors, Resyncs; Discards and Skipped vary with the transfer size
	}{
		{"clean", four, []want{{1, 3}, {2, 6}, {3, 9}, {4, 12}}, camera.Stats{Frames: 4}},
		{
			"bad CRC in a video line",
			mutate(four, 1, 30, func(p []byte) { p[40] ^= 0x01 }),
			[]want{{1, 3}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 3, CRCErrors: 1, Resyncs: 1},
		},
		{
			"bad CRC field",
			mutate(four, 1, 62, func(p []byte) { p[3] ^= 0x80 }),
			[]want{{1, 3}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 3, CRCErrors: 1, Resyncs: 1},
		},
		{
			"corrupt telemetry line A",
			mutate(four, 1, 0, func(p []byte) { p[4+2*20+1] ^= 0x04 }), // frame counter
			[]want{{1, 3}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 3, CRCErrors: 1, Resyncs: 1},
		},
		{
			"corrupt telemetry line C",
			mutate(four, 1, 2, func(p []byte) { p[100] ^= 0xFF }),
			[]want{{1, 3}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 3, CRCErrors: 1, Resyncs: 1},
		},
		{
			"wrong packet number, valid CRC",
			mutate(four, 1, 30, func(p []byte) { p[1] = 40; recrc(p) }),
			[]want{{1, 3}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 3, SeqErrors: 1, Resyncs: 1},
		},
		{
			"packet lost (reader fell behind)",
			func() []byte {
				off := (2*gap + camera.PacketsPerFrame + 30) * camera.PacketSize
				return append(bytes.Clone(four[:off]), four[off+camera.PacketSize:]...)
			}(),
			[]want{{1, 3}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 3, SeqErrors: 1, Resyncs: 1},
		},
		{
			"frame cut short: the next frame's packet 0 arrives mid-frame",
			func() []byte {
				s := frames(1)
				s = cameratest.AppendDiscards(s, gap)
				s = append(s, cameratest.AppendFrame(nil, pix(2), tm(6))[:40*camera.PacketSize]...)
				s = cameratest.AppendFrame(s, pix(3), tm(9)) // no discards: straight after
				return append(s, frames(4)...)
			}(),
			[]want{{1, 3}, {4, 12}},
			camera.Stats{Frames: 2, SeqErrors: 1, Resyncs: 1},
		},
		{
			"discards inside a frame",
			func() []byte {
				off := (2*gap + camera.PacketsPerFrame + 20) * camera.PacketSize
				s := cameratest.AppendDiscards(bytes.Clone(four[:off]), 5)
				return append(s, four[off:]...)
			}(),
			[]want{{1, 3}, {2, 6}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 4},
		},
		{
			"reserved ID bits set, CRC as the datasheet defines it",
			mutate(four, 1, 5, func(p []byte) { p[0] |= 0x30; recrc(p) }),
			[]want{{1, 3}, {2, 6}, {3, 9}, {4, 12}},
			camera.Stats{Frames: 4},
		},
		{
			"duplicates skipped",
			func() []byte {
				s := frames(1)
				s = cameratest.AppendFrame(s, pix(1), tm(4))
				s = cameratest.AppendFrame(s, pix(1), tm(5))
				return append(s, frames(2)...)
			}(),
			[]want{{1, 3}, {2, 6}},
			camera.Stats{Frames: 2, Duplicates: 2},
		},
		{
			"static scene: same pixels three counts on is a new frame",
			func() []byte {
				s := frames(1)
				s = cameratest.AppendFrame(s, pix(1), tm(4))
				return cameratest.AppendFrame(s, pix(1), tm(6))
			}(),
			[]want{{1, 3}, {1, 6}},
			camera.Stats{Frames: 2, Duplicates: 1},
		},
	}
	for _, tc := range cases {
		for _, n := range []int{1, 7, 24} {
			t.Run(tc.name+"/"+spiName(n), func(t *testing.T) {
				c := attach(t, cameratest.Playback(tc.stream, n), fast(n))
				var f camera.Frame
				var prevT int64
				for _, w := range tc.want {
					if err := c.Next(context.Background(), &f); err != nil {
						t.Fatalf("Next for count %d: %v (stats %+v)", w.count, err, c.Stats())
					}
					checkFrame(t, &f, w, prevT)
					prevT = f.T
				}
				got := c.Stats()
				got.Discards, got.Skipped = 0, 0
				if got != tc.stats {
					t.Errorf("stats %+v, want %+v", got, tc.stats)
				}
			})
		}
	}
}

func TestNextCancel(t *testing.T) {
	cases := []struct {
		name string
		port *cameratest.Port
		opts camera.Opts
		init bool // a resync is due, as after Init
	}{
		{"only discards", &cameratest.Port{}, camera.Opts{}, false},
		{"only discards, no idle pause", &cameratest.Port{}, camera.Opts{IdlePause: -1}, false},
		{"mid-frame", &cameratest.Port{Stream: cameratest.AppendFrame(nil, pix(1), tm(3))[:30*camera.PacketSize], Loop: true}, camera.Opts{PacketsPerTx: 1}, false},
		{"in the resync pause", &cameratest.Port{}, camera.Opts{ResyncPause: time.Hour}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.SyncTimeout = time.Hour
			var c *camera.Camera
			var err error
			if tc.init {
				bus := &i2ctest.Playback{Ops: concat([]i2ctest.IO{idle, idle}, get(0x0204, statusReady),
					set(0x0100, off), set(0x0218, on), set(0x021C, off))}
				c, err = camera.InitOpts(context.Background(), tc.port, bus, &tc.opts)
			} else {
				c, err = camera.AttachOpts(tc.port, &i2ctest.Playback{Ops: attachOps()}, &tc.opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			var f camera.Frame
			if err := c.Next(ctx, &f); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Next = %v, want the context's error", err)
			}
			if f.Pix != nil {
				t.Error("a cancelled Next touched the frame")
			}
		})
	}
}

func TestSyncTimeout(t *testing.T) {
	// A camera that lost sync sends only discards: Next resynchronises
	// every SyncTimeout until a frame comes.
	port := &cameratest.Port{}
	c := attach(t, port, &camera.Opts{ResyncPause: -1, IdlePause: time.Millisecond, SyncTimeout: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() {
		var f camera.Frame
		done <- c.Next(ctx, &f)
	}()
	for c.Stats().Resyncs < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	c := attach(t, &cameratest.Port{Stream: frames(1)}, fast(24))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var f camera.Frame
	if err := c.Next(context.Background(), &f); !errors.Is(err, camera.ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
}

func TestTransferSize(t *testing.T) {
	cases := []struct {
		name    string
		maxTx   int
		opts    camera.Opts
		wantLen int
		wantErr bool
	}{
		{"default", 0, camera.Opts{}, 24 * camera.PacketSize, false},
		{"spidev limit", 1000, camera.Opts{}, 6 * camera.PacketSize, false},
		{"option", 0, camera.Opts{PacketsPerTx: 3}, 3 * camera.PacketSize, false},
		{"limit under a packet", 100, camera.Opts{}, 0, true},
		{"negative", 0, camera.Opts{PacketsPerTx: -1}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := &cameratest.Port{Stream: frames(1), MaxTx: tc.maxTx}
			tc.opts.ResyncPause, tc.opts.IdlePause = -1, -1
			c, err := camera.AttachOpts(port, &i2ctest.Playback{Ops: attachOps(), DontPanic: true}, &tc.opts)
			if tc.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var f camera.Frame
			if err := c.Next(context.Background(), &f); err != nil {
				t.Fatal(err)
			}
			if port.LastLen != tc.wantLen {
				t.Errorf("transfers of %d bytes, want %d", port.LastLen, tc.wantLen)
			}
		})
	}
}

func TestSPIError(t *testing.T) {
	// spitest.Playback with nothing left to play fails the transfer.
	port := &spitest.Playback{}
	port.DontPanic = true
	c := attach(t, port, fast(24))
	var f camera.Frame
	if err := c.Next(context.Background(), &f); err == nil {
		t.Fatal("Next succeeded with a failing port")
	}
}

func TestCRC(t *testing.T) {
	// CRC-16/XMODEM's check value, the polynomial and init the datasheet
	// gives (periph's internal.CRC16 test pins the same).
	if got := cameratest.CRC([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("CRC = %#04x, want 0x31c3", got)
	}
}

// BenchmarkNext decodes one new frame per op: 63 packets of CRC, numbering
// and pixel decoding, plus the transfers' copies out of the fake port.
func BenchmarkNext(b *testing.B) {
	var s []byte
	for k := range 3 {
		s = cameratest.AppendFrame(s, pix(k), tm(3*k))
	}
	port := &cameratest.Port{Stream: s, Loop: true}
	c, err := camera.AttachOpts(port, &i2ctest.Playback{Ops: attachOps()}, fast(21))
	if err != nil {
		b.Fatal(err)
	}
	var f camera.Frame
	ctx := context.Background()
	if err := c.Next(ctx, &f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(camera.PacketsPerFrame * camera.PacketSize)
	for b.Loop() {
		if err := c.Next(ctx, &f); err != nil {
			b.Fatal(err)
		}
	}
	if s := c.Stats(); s.CRCErrors+s.SeqErrors+s.Duplicates != 0 {
		b.Fatalf("stats %+v", s)
	}
}

// TestJoinMidFrame: a new owner's first read lands in the middle of a frame
// the previous owner was reading. It skips to the next frame start without
// counting an error or pausing to resynchronise: nothing is wrong with the
// stream.
func TestJoinMidFrame(t *testing.T) {
	s := frames(1, 2)
	// Drop the leading discards and the first 30 packets of frame 1.
	s = s[(gap+30)*camera.PacketSize:]
	for _, n := range []int{1, 7, 24} {
		t.Run(spiName(n), func(t *testing.T) {
			c := attach(t, cameratest.Playback(s, n), fast(n))
			var f camera.Frame
			if err := c.Next(context.Background(), &f); err != nil {
				t.Fatal(err)
			}
			checkFrame(t, &f, want{2, 6}, 0)
			if st := c.Stats(); st.SeqErrors != 0 || st.Resyncs != 0 || st.Skipped != camera.PacketsPerFrame-30 {
				t.Errorf("stats %+v: want no errors and no resync, %d packets skipped", st, camera.PacketsPerFrame-30)
			}
		})
	}
}

// TestResumeAfterPause: a reader that paused for more than a frame period
// (its owner stood by while another instance read on) drops the packets it
// had buffered, which are history, and hunts for the next frame start
// without counting an error.
func TestResumeAfterPause(t *testing.T) {
	// Frames back to back: the transfer that ends frame 1 holds the
	// start of frame 2.
	s := cameratest.AppendDiscards(nil, gap)
	for k := 1; k <= 3; k++ {
		s = cameratest.AppendFrame(s, pix(k), tm(3*k))
	}
	c := attach(t, cameratest.Playback(s, 24), fast(24))
	var f camera.Frame
	if err := c.Next(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	checkFrame(t, &f, want{1, 3}, 0)
	time.Sleep(50 * time.Millisecond) // more than a frame period
	if err := c.Next(context.Background(), &f); err != nil {
		t.Fatal(err)
	}
	checkFrame(t, &f, want{3, 9}, 0) // frame 2's start was in the dropped buffer
	if st := c.Stats(); st.SeqErrors != 0 || st.CRCErrors != 0 || st.Resyncs != 0 {
		t.Errorf("stats %+v: want no errors and no resync", st)
	}
}
