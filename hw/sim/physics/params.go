package physics

import (
	"math"
	"time"
)

// Pulse limits and flight thresholds.
const (
	// MinWidth is the pulse width for zero throttle.
	MinWidth = 1000 * time.Microsecond
	// MaxWidth is the pulse width for full throttle.
	MaxWidth = 2000 * time.Microsecond
	// ArmWidth is the widest pulse that counts as "low" for arming.
	ArmWidth = 1100 * time.Microsecond
	// MinPeriod is the shortest pulse period an ESC accepts (500 Hz).
	MinPeriod = 2 * time.Millisecond

	// AirborneHeight is the altitude above which the quad counts as
	// airborne, in metres.
	AirborneHeight = 0.05
	// LandingTiltLimit is the largest tilt, in radians, at which the quad
	// may touch the ground without crashing (30°).
	LandingTiltLimit = 30 * math.Pi / 180
	// FlipTiltLimit is the tilt, in radians, past which the quad has
	// flipped and crashes even in the air (90°).
	FlipTiltLimit = math.Pi / 2
)

// Pulse is the PWM input of one ESC: the pulse width and the period of the
// pulse train. The zero Pulse is "no signal".
type Pulse struct {
	Width   time.Duration // high time of each pulse
	Period  time.Duration // time between pulse starts; below MinPeriod is no signal
	Present bool          // a pulse train is present at all; false is no signal
}

// Throttle is the throttle the pulse commands, clamp((Width−1000µs)/1000µs,
// 0, 1), ignoring whether the pulse is valid.
func (p Pulse) Throttle() float64 {
	t := float64(p.Width-MinWidth) / float64(MaxWidth-MinWidth)
	return min(max(t, 0), 1)
}

// valid reports whether an ESC accepts the pulse as a signal.
func (p Pulse) valid() bool {
	return p.Present && p.Period >= MinPeriod && p.Width > 0 && p.Width < p.Period
}

// Params are the physical constants of the airframe, ESCs and simulation.
// The zero Params, used in a Config, means DefaultParams(). Otherwise the
// values are used as given, except that a zero Step means 1 ms.
type Params struct {
	Mass          float64       // kg; must be positive
	Arm           float64       // m, from the centre to each motor (L)
	Ixx, Iyy, Izz float64       // body moments of inertia, kg·m²; must be positive
	Kq            float64       // m: yaw reaction torque per newton of thrust
	MaxThrust     float64       // N per motor at full speed
	MotorTau      time.Duration // motor speed lag time constant; zero = instant
	DragLinear    float64       // N·s/m, opposing world velocity
	DragQuad      float64       // N·s²/m², opposing world velocity times speed
	AngDamping    float64       // N·m·s/rad, opposing body rates
	Gravity       float64       // m/s², pulling along world −z
	ArmTime       time.Duration // low pulses needed to arm an ESC
	SignalLoss    time.Duration // time without pulses after which an armed ESC disarms
	CrashSpeed    float64       // m/s: touching the ground falling faster than this crashes
	Step          time.Duration // integration sub-step; zero = 1 ms
}

// DefaultParams returns the parameters of the reference 1 kg quad.
func DefaultParams() Params {
	return Params{
		Mass:       1.0,
		Arm:        0.12,
		Ixx:        0.010,
		Iyy:        0.010,
		Izz:        0.018,
		Kq:         0.016,
		MaxThrust:  6,
		MotorTau:   30 * time.Millisecond,
		DragLinear: 0.3,
		DragQuad:   0.05,
		AngDamping: 0.002,
		Gravity:    9.80665,
		ArmTime:    300 * time.Millisecond,
		SignalLoss: 100 * time.Millisecond,
		CrashSpeed: 2.0,
		Step:       time.Millisecond,
	}
}

// HoverSpeed is the motor speed fraction at which the four motors together
// lift the quad's weight: sqrt(Mass·Gravity/4/MaxThrust). It is also the
// hover throttle, since a settled motor's speed equals its throttle.
func (p Params) HoverSpeed() float64 {
	return math.Sqrt(p.Mass * p.Gravity / 4 / p.MaxThrust)
}

// Gusts describes random wind: an Ornstein–Uhlenbeck force on each
// horizontal world axis (x, y) and an Ornstein–Uhlenbeck torque on each body
// axis. The zero Gusts is calm air.
type Gusts struct {
	Force  float64       // N, standard deviation of each horizontal force component
	Torque float64       // N·m, standard deviation of each torque component
	Tau    time.Duration // correlation time; zero = 1 s
	Seed   int64         // seeds the gust generator; the same seed gives the same gusts
}

// Noise is the standard deviation of the white noise added to each sensor
// reading. The zero Noise gives exact readings.
type Noise struct {
	Gyro  float64 // rad/s on each gyro axis
	Accel float64 // m/s² on each accelerometer axis
	Baro  float64 // m of altitude before conversion to pressure
	Seed  int64   // seeds the noise generator
}

// Start is the initial state of a Quad. The zero Start is at rest on the
// ground at the origin, level, facing north, with the ESCs disarmed.
type Start struct {
	Pos              [3]float64 // world position, m; a negative z is raised to 0
	Vel              [3]float64 // world velocity, m/s
	Roll, Pitch, Yaw float64    // attitude, rad (see the package doc)
	Armed            bool       // the ESCs start armed, as if they had seen ArmTime of low pulses
	Motors           [4]float64 // initial motor speed fractions, 0..1
}

// Config configures a Quad. The zero Config is the default quad resting on
// the ground at the origin in calm air with exact sensors.
type Config struct {
	Params Params // zero = DefaultParams()
	Gusts  Gusts  // zero = calm air
	Noise  Noise  // zero = exact sensors
	Start  Start  // zero = on the ground at the origin, disarmed
}
