package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/lepton/cci"

	"github.com/skyswap/skyswap/hw/mono"
)

// Frame geometry and the VoSPI packet layout in Raw14 mode with telemetry
// as a header.
const (
	Width, Height   = 80, 60
	PacketSize      = 164 // 2-byte ID, 2-byte CRC, 160-byte payload
	TelemetryLines  = 3
	PacketsPerFrame = TelemetryLines + Height
)

// ErrNotRunning is the class of errors from Attach when the camera is not
// streaming as this package configures it (not booted, in standby, AGC on,
// telemetry off or as a footer): adopting it would mean reconfiguring it.
var ErrNotRunning = errors.New("camera: Lepton is not streaming as expected")

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("camera: closed")

// Frame is one new thermal frame.
type Frame struct {
	Pix    []uint16      // Width*Height 14-bit counts, row-major
	Count  uint32        // telemetry frame counter (runs at ~27 Hz, duplicates included)
	Uptime time.Duration // telemetry: camera uptime, ms resolution
	T      int64         // CLOCK_MONOTONIC ns (hw/mono) when its last packet was read
}

// Stats counts what the reader saw since the camera was opened. Frames are
// new frames returned by Next; Duplicates are complete frames skipped as
// repeats; CRCErrors and SeqErrors are dropped packets that each caused a
// resync; Discards are discard packets; Skipped are valid packets dropped
// while hunting for a frame start after a resync; Resyncs counts resyncs
// of every cause (errors, a cancelled Next mid-frame, SyncTimeout, Init).
type Stats struct {
	Frames, Duplicates, CRCErrors, SeqErrors, Discards, Resyncs uint64
	Skipped                                                     uint64
}

// Opts configures the camera. The zero value of each field means the
// default noted beside it.
type Opts struct {
	// Speed is the SPI clock asked of the port; 0 = 20 MHz, the Lepton's
	// maximum. Below ~2.3 MHz a frame cannot be read in a frame period.
	Speed physic.Frequency
	// PacketsPerTx is how many packets one SPI transfer reads; 0 = 24
	// (3936 bytes, inside spidev's default 4096-byte buffer). It is lowered
	// to what conn.Limits allows if the connection reports a limit.
	PacketsPerTx int
	// ResyncPause is how long the reader leaves the chip select deasserted
	// to resynchronise; 0 = 200 ms (the datasheet asks for > 185 ms).
	// Negative means no pause, for fakes that need none.
	ResyncPause time.Duration
	// IdlePause is how long the reader waits after a transfer that held
	// nothing but discard packets between frames, so that it does not spin
	// on the bus; 0 = 5 ms (a frame period is ~37 ms). Negative means none.
	IdlePause time.Duration
	// SyncTimeout: a Next that completes no frame (new or duplicate) for this
	// long resynchronises; 0 = 500 ms.
	SyncTimeout time.Duration
	// BootTimeout bounds Init's wait for the camera to boot and report
	// ready; 0 = 5 s.
	BootTimeout time.Duration
}

// DefaultOpts is the configuration of the project's camera.
var DefaultOpts = Opts{}

func (o Opts) withDefaults() (Opts, error) {
	if o.Speed == 0 {
		o.Speed = 20 * physic.MegaHertz
	}
	if o.PacketsPerTx == 0 {
		o.PacketsPerTx = 24
	}
	if o.ResyncPause == 0 {
		o.ResyncPause = 200 * time.Millisecond
	}
	if o.IdlePause == 0 {
		o.IdlePause = 5 * time.Millisecond
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = 500 * time.Millisecond
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 5 * time.Second
	}
	switch {
	case o.Speed < 0 || o.Speed > 20*physic.MegaHertz:
		return o, fmt.Errorf("camera: SPI speed %v is outside the Lepton's 0..20 MHz", o.Speed)
	case o.PacketsPerTx < 1:
		return o, fmt.Errorf("camera: %d packets per transfer; want at least 1", o.PacketsPerTx)
	}
	o.ResyncPause = max(o.ResyncPause, 0)
	o.IdlePause = max(o.IdlePause, 0)
	return o, nil
}

// Camera is an open Lepton. Next is not safe for concurrent use with
// itself; Stats and Close may be called from any goroutine.
type Camera struct {
	o Opts

	mu     sync.Mutex // guards sc and closed against Close during a transfer
	sc     spi.Conn
	closed bool

	buf      []byte // one transfer
	pos, end int    // unread packets: buf[pos:end]
	readAt   int64  // mono time the buffered packets were read

	next      int  // packet number expected next
	hunting   bool // after a resync: skip numbered packets until a packet 0
	resyncDue bool // pause before the next transfer
	idleDue   bool
	progress  int64 // mono time of the last complete frame or resync

	count   uint32
	uptime  time.Duration
	cur     *[Width * Height]uint16 // frame being assembled
	last    *[Width * Height]uint16 // last frame returned
	hasLast bool
	lastCnt uint32

	timer *time.Timer
	st    struct {
		frames, dups, crc, seq, discards, resyncs, skipped atomic.Uint64
	}
}

// Init cold-starts the camera: it waits for it to boot (Opts.BootTimeout),
// checks that it reports ready, turns AGC off and telemetry on as a header
// (periph's cci.Dev.Init, three SET commands), and connects the SPI port.
// The first Next begins with a resync, which the datasheet requires once
// the video settings change. Use it once, on the ground: it is the only
// path that writes camera settings.
func Init(p spi.Port, b i2c.Bus) (*Camera, error) {
	return InitOpts(context.Background(), p, b, nil)
}

// InitOpts is Init with a context bounding the boot wait and with options;
// nil opts means DefaultOpts.
func InitOpts(ctx context.Context, p spi.Port, b i2c.Bus, opts *Opts) (*Camera, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.BootTimeout)
	defer cancel()
	r := regs{i2c.Dev{Bus: b, Addr: cciAddr}}
	if err := r.waitBooted(ctx); err != nil {
		return nil, err
	}
	d, err := cci.New(b)
	if err != nil {
		return nil, fmt.Errorf("camera: init: CCI: %w", err)
	}
	for {
		s, err := d.GetStatus()
		if err != nil {
			return nil, fmt.Errorf("camera: init: get status: %w", err)
		}
		if s.CameraStatus == cci.SystemReady {
			break
		}
		if err := mono.Sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, fmt.Errorf("camera: init: status %v, not ready: %w", s.CameraStatus, err)
		}
	}
	if err := d.Init(); err != nil {
		return nil, fmt.Errorf("camera: init: AGC off, telemetry header: %w", err)
	}
	c, err := open(p, o)
	if err != nil {
		return nil, err
	}
	c.resync()
	return c, nil
}

// Attach adopts a camera that is already streaming for another owner. It
// reads the CCI status register and the camera status (cci.Dev.GetStatus)
// and checks with GET commands that AGC is off and telemetry is on as a
// header; otherwise it fails with ErrNotRunning. It sends no SET or RUN
// command, does not reset the camera and reads no video: see the package
// doc for when to call Next.
func Attach(p spi.Port, b i2c.Bus) (*Camera, error) {
	return AttachOpts(p, b, nil)
}

// AttachOpts is Attach with options; nil opts means DefaultOpts.
func AttachOpts(p spi.Port, b i2c.Bus, opts *Opts) (*Camera, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	r := regs{i2c.Dev{Bus: b, Addr: cciAddr}}
	s, err := r.status()
	if err != nil {
		return nil, fmt.Errorf("camera: attach: read CCI status: %w (is the Lepton at %#02x?)", err, cciAddr)
	}
	if s&bootMask != bootMask {
		return nil, fmt.Errorf("%w: CCI status %v says it has not booted; cold-start it with Init", ErrNotRunning, cci.StatusBit(s))
	}
	d, err := cci.New(b)
	if err != nil {
		return nil, fmt.Errorf("camera: attach: CCI: %w", err)
	}
	st, err := d.GetStatus()
	if err != nil {
		return nil, fmt.Errorf("camera: attach: get status: %w", err)
	}
	if st.CameraStatus != cci.SystemReady && st.CameraStatus != cci.SystemFlatFieldInProcess {
		return nil, fmt.Errorf("%w: camera status %v; cold-start it with Init", ErrNotRunning, st.CameraStatus)
	}
	checks := []struct {
		cmd  uint16
		want uint32
		what string
	}{
		{cmdAGCEnable, 0, "AGC is on (want raw 14-bit counts)"},
		{cmdTelemetryEnable, 1, "telemetry is off"},
		{cmdTelemetryLocation, 0, "telemetry is a footer, not a header"},
	}
	for _, ck := range checks {
		v, err := r.get32(ck.cmd)
		if err != nil {
			return nil, fmt.Errorf("camera: attach: GET %#04x: %w", ck.cmd, err)
		}
		if v != ck.want {
			return nil, fmt.Errorf("%w: %s (GET %#04x = %d); cold-start it with Init", ErrNotRunning, ck.what, ck.cmd, v)
		}
	}
	return open(p, o)
}

func resolve(opts *Opts) (Opts, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	return opts.withDefaults()
}

func open(p spi.Port, o Opts) (*Camera, error) {
	sc, err := p.Connect(o.Speed, spi.Mode3, 8)
	if err != nil {
		return nil, fmt.Errorf("camera: connect SPI %s: %w", p, err)
	}
	n := o.PacketsPerTx
	if l, ok := sc.(conn.Limits); ok && l.MaxTxSize() > 0 {
		if l.MaxTxSize() < PacketSize {
			return nil, fmt.Errorf("camera: SPI %s takes at most %d bytes a transfer; a VoSPI packet is %d (raise spidev's bufsiz)", p, l.MaxTxSize(), PacketSize)
		}
		n = min(n, l.MaxTxSize()/PacketSize)
	}
	c := &Camera{
		o:     o,
		sc:    sc,
		buf:   make([]byte, n*PacketSize),
		cur:   new([Width * Height]uint16),
		last:  new([Width * Height]uint16),
		timer: time.NewTimer(time.Hour),
		// A new reader may join a stream mid-frame (the previous owner
		// read until a moment ago): hunt for a frame start, without the
		// resync pause that a lost stream needs.
		hunting: true,
	}
	c.timer.Stop()
	return c, nil
}

// Stats returns the reader's counters.
func (c *Camera) Stats() Stats {
	return Stats{
		Frames:     c.st.frames.Load(),
		Duplicates: c.st.dups.Load(),
		CRCErrors:  c.st.crc.Load(),
		SeqErrors:  c.st.seq.Load(),
		Discards:   c.st.discards.Load(),
		Resyncs:    c.st.resyncs.Load(),
		Skipped:    c.st.skipped.Load(),
	}
}

// Close releases the SPI connection (closing it if it is an io.Closer; the
// port itself belongs to the caller). It waits for a transfer in progress,
// and a Next running concurrently returns ErrClosed. It sends nothing to
// the camera: the camera keeps running, for the next owner. Closing twice
// is a no-op.
func (c *Camera) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if cl, ok := c.sc.(io.Closer); ok {
		err = cl.Close()
	}
	c.sc = nil
	return err
}
