// Package scene renders what the virtual drone's thermal camera sees: cold
// sky over warmer flat ground, with a warm square target on the ground
// ahead of the take-off point, from the drone's true attitude and position,
// in the Lepton's 14-bit counts (about 0.025 K per count, 8192 near the
// camera's own temperature).
//
// # Camera
//
// The camera is fixed to the body, looking forward along body x and tilted
// MountTiltDeg down (a rotation about body y, the same sense as a positive,
// nose-down pitch), CameraHeight above the body origin. It is a pinhole with
// a horizontal field of view of HFOVDeg over Width pixels and the same focal
// length vertically, so the vertical field of view follows from the 80:60
// aspect: 2·atan(30/f) ≈ 39.4° with f = 40/tan(25.5°) ≈ 83.9 pixels. Row 0
// is the top of the image and column 0 its left, as seen looking forward
// from behind the camera; pixel (col, row) looks along
//
//	(1, −(col+0.5−40)/f, −(row+0.5−30)/f)   in camera axes (forward, left, up)
//
// rotated down by the tilt into the body frame and by the attitude into
// the world frame (physics' frames: body FLU, world x north, y west, z up).
//
// # What the image shows
//
// A ray that points upward sees sky (Sky counts, colder towards the
// zenith). One that points downward meets the ground plane z = 0: Ground
// counts, warmer by up to GroundNear within a few metres of the drone, and
// Target counts on the TargetSize square centred TargetAhead metres ahead
// of the take-off point along the take-off heading. Each pixel gets
// Gaussian noise of NoiseCounts, drawn from a generator seeded by the seed
// and the frame number, so a frame's image is reproducible.
//
// # The horizon
//
// The horizon is where the rays turn from up to down; pixels whose centre
// lies above it are sky. Level, it is the horizontal line y = 30 − f·tan 10°
// ≈ 15.2 (y measured from the top edge, so rows 0..14 are sky and row 15 is
// ground): 10° above the image centre, the camera's tilt.
//
//   - Roll alone: y(x) = 30 − f·tan 10° − x·tan(roll)/cos 10°, x the
//     distance from the vertical centre line in pixels, positive to the
//     right. Positive roll (left side up) turns the horizon
//     counter-clockwise in the image, low on the left and high on the
//     right, by about the roll angle; negative roll turns it clockwise.
//   - Pitch alone: y = 30 − f·tan(10° + pitch). Positive pitch (nose down)
//     moves the horizon up, out of the top from +9.7° on (all ground);
//     negative pitch (nose up) moves it down, through the centre at −10°
//     and out of the bottom from −29.7° on (all sky).
//
// Yaw turns the view about the vertical: the horizon stays, the target
// moves sideways and leaves the view.
package scene

import (
	"math"
	"math/rand/v2"

	"github.com/skyswap/skyswap/hw/sim/physics"
)

// The camera and the scene.
const (
	Width, Height = 80, 60
	HFOVDeg       = 51.0
	MountTiltDeg  = 10.0
	CameraHeight  = 0.05 // m above the body origin (the body's lowest point rests on the ground)

	Sky         = 7700 // counts at the horizon
	SkyZenith   = 7500 // counts straight up
	Ground      = 8180 // counts of far ground
	GroundNear  = 60   // extra counts right under the camera, fading over GroundFade metres
	GroundFade  = 8.0  // m
	Target      = 9800 // counts
	TargetSize  = 2.0  // m, side of the square target
	TargetAhead = 5.0  // m from the take-off point to the target's centre
	NoiseCounts = 3.0  // standard deviation of the per-pixel noise
)

// Focal is the focal length in pixels.
var Focal = Width / 2 / math.Tan(HFOVDeg/2*math.Pi/180)

// Pose is where the camera's body is.
type Pose struct {
	Att physics.Quaternion // body to world
	Pos [3]float64         // world position of the body origin, m
}

// Config configures a Scene. The zero Config takes off at the origin facing
// north with noise seed 0.
type Config struct {
	TakeOff [2]float64 // take-off point, world x and y, m
	Heading float64    // yaw at take-off, rad: the target lies ahead along it
	Seed    uint64     // seeds the pixel noise
}

// Scene renders the camera's view. It is immutable after New and safe for
// concurrent use.
type Scene struct {
	cfg    Config
	target [2]float64 // centre, world x, y
	cosH   float64
	sinH   float64
	rays   [Width * Height][3]float64 // per pixel, unit, body frame
}

// New returns the scene of cfg.
func New(cfg Config) *Scene {
	s := &Scene{cfg: cfg}
	s.sinH, s.cosH = math.Sincos(cfg.Heading)
	s.target = [2]float64{cfg.TakeOff[0] + TargetAhead*s.cosH, cfg.TakeOff[1] + TargetAhead*s.sinH}
	st, ct := math.Sincos(MountTiltDeg * math.Pi / 180)
	for row := range Height {
		for col := range Width {
			// Camera axes: forward, left, up.
			c := [3]float64{1, -(float64(col) + 0.5 - Width/2) / Focal, -(float64(row) + 0.5 - Height/2) / Focal}
			// Tilt down: rotate about body y by +tilt.
			b := [3]float64{c[0]*ct + c[2]*st, c[1], -c[0]*st + c[2]*ct}
			n := math.Sqrt(b[0]*b[0] + b[1]*b[1] + b[2]*b[2])
			s.rays[row*Width+col] = [3]float64{b[0] / n, b[1] / n, b[2] / n}
		}
	}
	return s
}

// Ray returns the unit direction pixel (col, row) looks along in the body
// frame.
func (s *Scene) Ray(col, row int) [3]float64 { return s.rays[row*Width+col] }

// Render draws the view from p into pix (Width*Height counts, row-major,
// top row first), with the noise of frame.
func (s *Scene) Render(p Pose, frame uint32, pix []uint16) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(frame)))
	h := p.Pos[2] + CameraHeight
	// The attitude as the images of the body axes: one rotation per
	// axis instead of one per pixel.
	ex, ey, ez := p.Att.Rotate([3]float64{1, 0, 0}), p.Att.Rotate([3]float64{0, 1, 0}), p.Att.Rotate([3]float64{0, 0, 1})
	for i, b := range s.rays {
		var d [3]float64
		for k := range d {
			d[k] = b[0]*ex[k] + b[1]*ey[k] + b[2]*ez[k]
		}
		v := s.radiance(p.Pos, h, d)
		v += NoiseCounts * rng.NormFloat64()
		pix[i] = uint16(min(max(math.Round(v), 0), 0x3FFF))
	}
}

// radiance returns the counts seen along world direction d from pos, the
// camera h above the ground.
func (s *Scene) radiance(pos [3]float64, h float64, d [3]float64) float64 {
	if d[2] >= 0 || h <= 0 {
		return Sky - (Sky-SkyZenith)*max(d[2], 0)
	}
	t := h / -d[2]
	dx, dy := pos[0]+t*d[0]-s.target[0], pos[1]+t*d[1]-s.target[1]
	// Into the target's axes (along and across the take-off heading).
	along, across := dx*s.cosH+dy*s.sinH, -dx*s.sinH+dy*s.cosH
	if math.Abs(along) <= TargetSize/2 && math.Abs(across) <= TargetSize/2 {
		return Target
	}
	dist := t * math.Hypot(d[0], d[1])
	return Ground + GroundNear*math.Exp(-dist/GroundFade)
}

// Horizon returns where the horizon lies in the image for an attitude, by
// the formulas of the package doc (exact for roll or pitch alone, close for
// both when small): the line's angle in degrees, positive when it falls to
// the right (image y grows downwards), and its y at the centre column, in
// pixels from the top edge. thermal.Horizon measures the same two numbers
// in a received frame (in its pixels, Scale times these).
func Horizon(rollDeg, pitchDeg float64) (angleDeg, centreY float64) {
	const rad = math.Pi / 180
	tilt := (MountTiltDeg + pitchDeg) * rad
	angleDeg = math.Atan(-math.Tan(rollDeg*rad)/math.Cos(tilt)) / rad
	return angleDeg, Height/2 - Focal*math.Tan(tilt)
}
