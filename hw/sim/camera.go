package sim

import (
	"fmt"
	"math"
	"sync"

	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/chips"
	"github.com/skyswap/skyswap/hw/sim/physics"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/hw/sim/scene"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

var _ simbus.SPIHandler = (*Drone)(nil)

// SPI implements simbus.SPIHandler: the camera's video on chip select
// SPICamera. The transaction returns after its bytes' time on the wire
// (SPIByteTime each), as on the Pi, so a reader cannot spin faster than
// the hardware; each read goes to the referee under the client's name.
func (d *Drone) SPI(c simbus.Client, dev uint8, w, r []byte) error {
	if dev != SPICamera || d.cam == nil {
		return fmt.Errorf("%w: no SPI device on chip select %d", simbus.ErrNACK, dev)
	}
	start := mono.Now()
	if err := d.recordVideo(c, start, w, r); err != nil {
		return nack(err)
	}
	mono.SleepUntil(start + int64(max(len(w), len(r)))*int64(SPIByteTime))
	return nil
}

// camReads is the camera reads' scratch (recordVideo), reused from read
// to read: a read allocates nothing, so flying does not grow drone-sim's
// heap (main says why it must not collect).
type camReads struct {
	mu        sync.Mutex
	info      []chips.LeptonPacket
	packets   []referee.CameraPacket
	delivered []uint32
}

// recordVideo clocks one video read of the camera at start and tells the
// referee which packets and frames it delivered.
func (d *Drone) recordVideo(c simbus.Client, start int64, w, r []byte) error {
	s := &d.camRead
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.info, err = d.cam.Stream(w, r, s.info[:0]); err != nil || len(s.info) == 0 {
		return err
	}
	s.packets = s.packets[:0]
	for _, p := range s.info {
		s.packets = append(s.packets, referee.CameraPacket{Discard: p.Discard, Frame: p.Frame, Number: p.Number, Count: p.Count, Corrupt: p.Fault != chips.LeptonNoFault})
	}
	s.delivered = d.ref.RecordCameraRead(referee.CameraRead{T: start, Reader: c.Name, Conn: c.ID, Packets: s.packets}, s.delivered[:0])
	for _, f := range s.delivered {
		fr := referee.CameraFrame{T: start, Reader: c.Name, Frame: f}
		if rd, ok := d.CameraRender(f); ok {
			fr.Image, fr.RenderT, fr.RollDeg, fr.PitchDeg, fr.AltM = rd.Image, rd.T, rd.RollDeg, rd.PitchDeg, rd.AltM
		}
		d.ref.RecordCameraFrame(fr)
	}
	return nil
}

// txCamera is one CCI transaction; the referee logs the configuration
// commands it ran.
func (d *Drone) txCamera(c simbus.Client, w, r []byte) error {
	ran, err := d.cam.TxCommands(w, r, nil)
	for _, cmd := range ran {
		if chips.LeptonChangesConfig(cmd) {
			d.ref.RecordCameraCommand(mono.Now(), c.Name, cmd)
		}
	}
	return nack(err)
}

// CameraRender is what a camera image shows: the truth it was rendered
// from.
type CameraRender struct {
	Image    uint32  `json:"image"`     // the camera's frame counter when it was rendered (a new image every third frame)
	T        int64   `json:"t"`         // the truth's time, CLOCK_MONOTONIC ns: the frame's start, to the physics step
	RollDeg  float64 `json:"roll_deg"`  // attitude (package physics' conventions)
	PitchDeg float64 `json:"pitch_deg"` //
	AltM     float64 `json:"alt_m"`     // altitude of the body origin
}

// renderCamera is the camera's chips.LeptonRender: the scene from the
// truth at the frame's start t.
func (d *Drone) renderCamera(frame uint32, t int64, pix []uint16) {
	// The newest pose no later than t: the frame's start. A frame is
	// rendered at most two frame periods (74 ms) after it, well within the
	// poses kept; failing that, the oldest kept will do.
	p, _ := d.poses.last(func(p pose) bool { return p.t <= t })
	if p.t == 0 { // the physics has not run: the start state holds
		s := d.quad.State()
		p = pose{t: mono.Now(), att: s.Att, pos: s.Pos}
	}
	d.scene.Render(scene.Pose{Att: p.att, Pos: p.pos}, frame, pix)
	roll, pitch, _ := p.att.Euler()
	d.renders.push(CameraRender{Image: frame, T: p.t, RollDeg: roll * 180 / math.Pi, PitchDeg: pitch * 180 / math.Pi, AltM: p.pos[2]})
}

// CameraRender returns what the image of camera frame frame (a frame
// counter, repeats included) was rendered from, if it is among the last
// few hundred images.
func (d *Drone) CameraRender(frame uint32) (CameraRender, bool) {
	return d.renders.last(func(c CameraRender) bool { return c.Image <= frame })
}

// Camera returns the camera's model, or nil without a camera.
func (d *Drone) Camera() *chips.Lepton { return d.cam }

// CameraReport returns the referee's camera report on [from, to] (0 = the
// log's start / now).
func (d *Drone) CameraReport(from, to int64) referee.CameraReport {
	return d.ref.CameraReport(from, to)
}

// CameraFrames returns the frames delivered in [from, to].
func (d *Drone) CameraFrames(from, to int64) []referee.CameraFrame {
	return d.ref.CameraFrames(from, to)
}

// pose is one truth sample for the camera.
type pose struct {
	t   int64
	att physics.Quaternion
	pos [3]float64
}

// history keeps the last values pushed, as many as it was made for. Safe
// for concurrent use.
type history[T any] struct {
	mu   sync.Mutex
	buf  []T
	n    int
	next int
}

func newHistory[T any](size int) *history[T] { return &history[T]{buf: make([]T, size)} }

func (h *history[T]) push(v T) {
	h.mu.Lock()
	h.buf[h.next] = v
	h.next = (h.next + 1) % len(h.buf)
	h.n = min(h.n+1, len(h.buf))
	h.mu.Unlock()
}

// last returns the newest value that match accepts; if none does, the
// oldest value kept and false; if there is none, the zero value and false.
func (h *history[T]) last(match func(T) bool) (T, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v T
	for k := 1; k <= h.n; k++ { // newest first
		if v = h.buf[(h.next-k+len(h.buf))%len(h.buf)]; match(v) {
			return v, true
		}
	}
	return v, false
}

// CorruptCamera makes the camera's next n video packets come out with
// fault f (see chips.Lepton.Corrupt). It fails without a camera.
func (d *Drone) CorruptCamera(f chips.LeptonFault, n int) error {
	if d.cam == nil {
		return errNoCamera
	}
	d.cam.Corrupt(f, n)
	return nil
}

var errNoCamera = fmt.Errorf("sim: this drone has no camera (SIM_CAMERA=0)")
