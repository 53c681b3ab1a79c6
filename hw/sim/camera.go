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
	info, err := d.cam.Stream(w, r, nil)
	if err != nil {
		return nack(err)
	}
	if len(info) > 0 {
		ps := make([]referee.CameraPacket, len(info))
		for i, p := range info {
			ps[i] = referee.CameraPacket{Discard: p.Discard, Frame: p.Frame, Number: p.Number, Count: p.Count, Corrupt: p.Fault != chips.LeptonNoFault}
		}
		for _, f := range d.ref.RecordCameraRead(referee.CameraRead{T: start, Reader: c.Name, Conn: c.ID, Packets: ps}, nil) {
			fr := referee.CameraFrame{T: start, Reader: c.Name, Frame: f}
			if rd, ok := d.CameraRender(f); ok {
				fr.Image, fr.RenderT, fr.RollDeg, fr.PitchDeg, fr.AltM = rd.Image, rd.T, rd.RollDeg, rd.PitchDeg, rd.AltM
			}
			d.ref.RecordCameraFrame(fr)
		}
	}
	mono.SleepUntil(start + int64(max(len(w), len(r)))*int64(SPIByteTime))
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
	p, ok := d.poses.at(t)
	if !ok { // the physics has not run: the start state holds
		s := d.quad.State()
		p = pose{t: mono.Now(), att: s.Att, pos: s.Pos}
	}
	d.scene.Render(scene.Pose{Att: p.att, Pos: p.pos}, frame, pix)
	roll, pitch, _ := p.att.Euler()
	d.renders.add(CameraRender{Image: frame, T: p.t, RollDeg: roll * 180 / math.Pi, PitchDeg: pitch * 180 / math.Pi, AltM: p.pos[2]})
}

// CameraRender returns what the image of camera frame frame (a frame
// counter, repeats included) was rendered from, if it is among the last
// few hundred images.
func (d *Drone) CameraRender(frame uint32) (CameraRender, bool) { return d.renders.find(frame) }

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

// poseRing keeps the last poses, one per physics step (about 0.5 s at
// 1 kHz: a frame is rendered at most two frame periods, 74 ms, after its
// start).
type poseRing struct {
	mu   sync.Mutex
	buf  [512]pose
	n    int
	next int
}

func (r *poseRing) push(p pose) {
	r.mu.Lock()
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// at returns the newest pose no later than t, or the oldest kept if all
// are later; false if there is none.
func (r *poseRing) at(t int64) (pose, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return pose{}, false
	}
	var p pose
	for k := 1; k <= r.n; k++ { // newest first
		p = r.buf[(r.next-k+len(r.buf))%len(r.buf)]
		if p.t <= t {
			break
		}
	}
	return p, true
}

// renderLog keeps the last images' renders.
type renderLog struct {
	mu   sync.Mutex
	buf  [256]CameraRender
	n    int
	next int
}

func (l *renderLog) add(c CameraRender) {
	l.mu.Lock()
	l.buf[l.next] = c
	l.next = (l.next + 1) % len(l.buf)
	l.n = min(l.n+1, len(l.buf))
	l.mu.Unlock()
}

// find returns the newest render of an image at or before frame.
func (l *renderLog) find(frame uint32) (CameraRender, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := 1; k <= l.n; k++ {
		if c := l.buf[(l.next-k+len(l.buf))%len(l.buf)]; c.Image <= frame {
			return c, true
		}
	}
	return CameraRender{}, false
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
