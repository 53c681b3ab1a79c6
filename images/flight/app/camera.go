package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"github.com/skyswap/skyswap/hw/bus"
	"github.com/skyswap/skyswap/hw/camera"
	"github.com/skyswap/skyswap/hw/camera/thermal"
	"github.com/skyswap/skyswap/hw/mono"
)

// camStream streams the Lepton's frames, as false-colour JPEGs, to the
// on-board NATS while this instance drives the motors: the video stream
// is read-destructive, so only the owner reads it, and it hands over with
// the motors. A candidate attaches at start (no reset of a streaming
// camera) and starts reading at its cut-over tick; the old owner stops
// reading at its last tick.
type camStream struct {
	open    func() (*camera.Camera, spi.PortCloser, error)
	init    func(spi.Port) (*camera.Camera, error) // configures an unconfigured camera
	cam     *camera.Camera
	port    spi.PortCloser
	publish func(data []byte) error
	driving *atomic.Bool // set by the control loop every tick
	meta    frameMeta
	log     *slog.Logger

	mu         sync.Mutex
	cancelRead context.CancelFunc // ends the current ownership's reading
}

// openTries is how many times the camera is opened before the drone
// flies without it.
const openTries = 3

// handoverGuard is how long a new owner waits before its first read: more
// than the old owner's last transfer takes to end (one transfer of 24
// packets is 1.6 ms at 20 MHz), with room for a loaded machine.
const handoverGuard = 10 * time.Millisecond

// stopReading ends reading at once: the control loop calls it at the tick
// this instance stops driving.
func (s *camStream) stopReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelRead != nil {
		s.cancelRead()
	}
}

// frameMeta travels in each JPEG's COM segment.
type frameMeta struct {
	Instance string `json:"instance"`
	Version  string `json:"version"`
	Count    uint32 `json:"count"` // the camera's frame counter
	T        int64  `json:"t"`     // CLOCK_MONOTONIC ns when the frame was read
	// The reader's counts since it opened the camera (camera.Stats): the
	// ground sees a link that drops packets.
	Frames    uint64 `json:"frames"`
	CRCErrors uint64 `json:"crc_errors"`
	SeqErrors uint64 `json:"seq_errors"`
	Resyncs   uint64 `json:"resyncs"`
}

// openCamera opens the camera's port and the camera for start: Init on a
// cold start; otherwise Attach, which reconfigures nothing. A camera that
// nobody has configured (the owner before this one, v1, has no camera)
// fails Attach with camera.ErrNotRunning; the port stays open then, and
// the caller configures it with Init once this instance owns the drone.
func openCamera(ctx context.Context, cfg Config, b i2c.Bus, log *slog.Logger) (*camera.Camera, spi.PortCloser, error) {
	port, err := bus.OpenSPI(ctx, cfg.CameraSPI, cfg.Instance)
	if err != nil {
		return nil, nil, err
	}
	var cam *camera.Camera
	if cfg.Start == StartCold {
		log.Info("camera: cold start", "spi", cfg.CameraSPI)
		cam, err = camera.InitOpts(ctx, port, b, nil)
	} else {
		log.Info("camera: attaching to the streaming camera; no reset", "spi", cfg.CameraSPI)
		cam, err = camera.Attach(port, b)
	}
	if err != nil && !errors.Is(err, camera.ErrNotRunning) {
		port.Close()
		return nil, nil, err
	}
	return cam, port, err
}

// run opens the camera, then streams until ctx is done. Opening happens
// here, beside the control loop, so a missing or slow camera never delays
// a take-off or a candidate's shadowing: the camera is a payload, and a
// drone without it still flies.
func (s *camStream) run(ctx context.Context) {
	if !s.openWithTries(ctx) {
		return
	}
	defer s.close()
	// One ticker paces every wait for ownership: no timer per poll.
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-poll.C:
			return true
		}
	}
	if s.cam == nil && !s.configureWhenDriving(wait) {
		return
	}
	var enc encoder
	for ctx.Err() == nil {
		if !s.driving.Load() {
			wait()
			continue
		}
		// Read while driving. The control loop calls stopReading at the
		// tick it stops driving, so the old owner's last transfer ends
		// within one transfer (~2 ms) of the cut-over; a new owner waits
		// out that much before its first, so the two never share the
		// stream (a shared stream costs both a resync).
		if mono.Sleep(ctx, handoverGuard) != nil {
			return
		}
		s.stream(ctx, &enc)
	}
}

// openWithTries opens the camera's port, and the camera if someone
// configured it: a camera that does not answer at once (a bus glitch, a
// camera still booting) gets a few more tries before the drone flies
// without it.
func (s *camStream) openWithTries(ctx context.Context) bool {
	var err error
	for try := 1; ; try++ {
		if s.cam, s.port, err = s.open(); s.port != nil || try == openTries || ctx.Err() != nil {
			break
		}
		s.log.Warn("camera did not open; trying again", "err", err, "try", try)
		mono.Sleep(ctx, time.Second)
	}
	if s.port == nil {
		s.log.Error("camera unavailable; flying without it", "err", err)
		return false
	}
	if s.cam == nil {
		s.log.Info("camera not configured yet; configuring it once this instance drives", "err", err)
	}
	return true
}

// configureWhenDriving configures a camera nobody configured (so nobody
// streams it) once this instance owns the drone, never before.
func (s *camStream) configureWhenDriving(wait func() bool) bool {
	for !s.driving.Load() {
		if !wait() {
			return false
		}
	}
	var err error
	if s.cam, err = s.init(s.port); err != nil {
		s.log.Error("camera unavailable; flying without it", "err", err)
		return false
	}
	s.log.Info("camera configured")
	return true
}

// encoder is the stream's reusable frame, JPEG encoder and buffer.
type encoder struct {
	f   camera.Frame
	enc thermal.Encoder
	buf []byte
	n   uint64
}

// stream reads, encodes and publishes frames until the control loop stops
// driving (stopReading) or ctx ends.
func (s *camStream) stream(ctx context.Context, e *encoder) {
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancelRead = cancel
	s.mu.Unlock()
	if !s.driving.Load() {
		cancel() // lost it already
	}
	for octx.Err() == nil {
		if err := s.cam.Next(octx, &e.f); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("camera read failed", "err", err)
				mono.Sleep(octx, 100*time.Millisecond)
			}
			continue
		}
		s.send(e)
	}
}

// send encodes the frame in e with the stream's metadata and publishes it.
func (s *camStream) send(e *encoder) {
	st := s.cam.Stats()
	s.meta.Count, s.meta.T = e.f.Count, e.f.T
	s.meta.Frames, s.meta.CRCErrors, s.meta.SeqErrors, s.meta.Resyncs = st.Frames, st.CRCErrors, st.SeqErrors, st.Resyncs
	comment, _ := json.Marshal(s.meta)
	var err error
	if e.buf, err = e.enc.Append(e.buf[:0], e.f.Pix, camera.Width, camera.Height, string(comment)); err != nil {
		s.log.Warn("camera frame not encoded", "err", err)
		return
	}
	if err := s.publish(e.buf); err != nil {
		s.log.Debug("camera frame not published", "err", err)
	}
	if e.n++; e.n%100 == 1 {
		s.log.Info("camera streaming", "frames", st.Frames, "crc_errors", st.CRCErrors, "seq_errors", st.SeqErrors,
			"resyncs", st.Resyncs, "jpeg_bytes", len(e.buf))
	}
}

func (s *camStream) close() {
	if s.cam != nil {
		s.cam.Close()
	}
	s.port.Close()
}
