// Package control is the flight app's control law: an attitude and altitude
// estimator (complementary filters over the IMU and barometer), a cascaded
// attitude/rate controller, an altitude controller, a mission (take-off,
// hover, a gentle pattern, landing) and the X-quad mixer.
//
// It is pure computation, a step a tick: no I/O, no clock (a sample
// carries its time), no goroutines. Everything it remembers between ticks
// is in State, an exported plain value, so that a hand-over can copy a
// running controller into a new process and continue on the next tick as
// if nothing happened.
//
// Frames and signs: body FLU (x forward, y left, z up), world z up. Roll is
// positive left side up, pitch positive nose down, yaw positive nose left
// (right-handed about x, y, z). Motors: 0 front-left CW, 1 front-right CCW,
// 2 rear-right CW, 3 rear-left CCW; this is how the airframe is wired.
package control

import (
	"math"
	"time"

	"github.com/skyswap/skyswap/hw/baro"
)

// Airframe is the physical model the controller is tuned for. It must match
// the aircraft (or the virtual drone's physics parameters).
type Airframe struct {
	MassKg     float64 // take-off mass
	MaxThrustN float64 // one motor's thrust at full throttle
	ArmM       float64 // centre to motor axis
	YawCoefM   float64 // reaction torque per newton of thrust
	Inertia    [3]float64
}

// DefaultAirframe is the project's reference quad (and the virtual drone's).
var DefaultAirframe = Airframe{MassKg: 1.0, MaxThrustN: 6, ArmM: 0.12, YawCoefM: 0.016, Inertia: [3]float64{0.010, 0.010, 0.018}}

// Gains are the controller's tuning.
type Gains struct {
	AttP     [3]float64 // angle error → rate setpoint (1/s), roll pitch yaw
	RateP    [3]float64 // rate error → angular acceleration (1/s)
	RateI    [3]float64 // integral of rate error (1/s²)
	RateILim float64    // rad/s·s clamp of each rate integrator
	AltP     float64    // m → m/s²
	AltD     float64    // m/s → m/s²
	AltI     float64    // m·s → m/s²
	AltILim  float64    // m·s clamp
}

// DefaultGains suit DefaultAirframe at 100..1000 Hz.
var DefaultGains = Gains{
	AttP:     [3]float64{6, 6, 2.5},
	RateP:    [3]float64{14, 14, 6},
	RateI:    [3]float64{6, 6, 2},
	RateILim: 0.5,
	AltP:     4,
	AltD:     3.5,
	AltI:     1.2,
	AltILim:  3,
}

// Mission is what the aircraft does once armed.
type Mission struct {
	AltM     float64 // hover altitude
	HoverS   float64 // seconds of hover before the pattern starts
	Pattern  string  // "hover" (none) or "box": gentle 2° tilts in four directions
	ClimbMS  float64 // take-off climb rate, m/s
	DescentM float64 // landing descent rate, m/s
}

// DefaultMission takes off to 2 m, hovers 5 s, then flies the box.
var DefaultMission = Mission{AltM: 2, HoverS: 5, Pattern: "box", ClimbMS: 0.6, DescentM: 0.5}

// Mode is the mission phase.
type Mode uint8

// Modes, in mission order.
const (
	ModeTakeoff Mode = iota + 1
	ModeHover
	ModePattern
	ModeLanding
	ModeLanded
)

func (m Mode) String() string {
	switch m {
	case ModeTakeoff:
		return "takeoff"
	case ModeHover:
		return "hover"
	case ModePattern:
		return "pattern"
	case ModeLanding:
		return "landing"
	case ModeLanded:
		return "landed"
	}
	return "unknown"
}

// Sensors is one tick's input.
type Sensors struct {
	Accel [3]float64 `json:"accel"` // specific force, body frame, m/s²
	Gyro  [3]float64 `json:"gyro"`  // body rates, rad/s
	// BaroPa is the barometric pressure; used only when BaroValid (the
	// barometer is read at a lower rate).
	BaroPa    float64 `json:"baro_pa"`
	BaroValid bool    `json:"baro_valid"`
	// TimeNs is when the sample was taken (the loop's grid, CLOCK_MONOTONIC
	// ns); 0 = unknown, one tick after the state's last sample.
	TimeNs int64 `json:"time_ns,omitempty"`
}

// State is everything the controller carries from one tick to the next.
// Copying it into another Controller with the same configuration makes that
// controller produce the same outputs from the same sensors.
type State struct {
	Tick uint64 `json:"tick"` // ticks since take-off (steps: control time)
	Mode Mode   `json:"mode"`
	// LastNs is the TimeNs of the last step's sample; 0 = unknown.
	LastNs int64 `json:"last_ns,omitempty"`
	// ModeTick is the Tick at which Mode was entered.
	ModeTick uint64 `json:"mode_tick"`

	// Estimator.
	// BaroRefPa is the pressure at altitude 0 (the take-off point): the
	// barometer's reference travels with the state, since a process that
	// starts in the air cannot measure it.
	BaroRefPa float64    `json:"baro_ref_pa"`
	Att       [3]float64 `json:"att"` // roll, pitch, yaw, rad
	Alt       float64    `json:"alt"` // m above take-off
	VZ        float64    `json:"vz"`  // m/s, up

	// Integrators.
	RateI [3]float64 `json:"rate_i"`
	AltI  float64    `json:"alt_i"`

	// Setpoints.
	AttSP [3]float64 `json:"att_sp"`
	AltSP float64    `json:"alt_sp"`
	VZSP  float64    `json:"vz_sp"`

	// Out is the last tick's motor throttles, 0..1.
	Out [4]float64 `json:"out"`
}

// Controller turns sensor samples into motor throttles, one tick at a time.
type Controller struct {
	air  Airframe
	g    Gains
	m    Mission
	dt   float64
	S    State
	gyro [3]float64 // last gyro, for telemetry only
}

// New returns a controller ticking at rateHz, on the ground, about to take
// off. groundPa is the pressure at the take-off point (altitude 0); 0
// leaves the barometer unused until a state with a reference is loaded.
func New(rateHz float64, air Airframe, g Gains, m Mission, groundPa float64) *Controller {
	c := &Controller{air: air, g: g, m: m, dt: 1 / rateHz}
	c.S.Mode = ModeTakeoff
	c.S.BaroRefPa = groundPa
	return c
}

// Resume makes a controller that knows nothing of the flight so far take
// over in the air: it assumes it is hovering at the mission altitude, levels
// from the accelerometer, and holds. It is what an update without state
// transfer can do (the stop-start and start-then-stop baselines).
func (c *Controller) Resume(accel [3]float64, pressurePa float64) {
	c.S = State{Mode: ModeHover, Alt: c.m.AltM, AltSP: c.m.AltM}
	c.S.BaroRefPa = pressurePa / math.Pow(1-2.25577e-5*c.m.AltM, 5.25588)
	c.S.Att[0] = math.Atan2(accel[1], accel[2])
	c.S.Att[1] = math.Atan2(-accel[0], math.Hypot(accel[1], accel[2]))
}

// Land starts a landing from wherever the aircraft is. It is idempotent.
func (c *Controller) Land() {
	if c.S.Mode != ModeLanding && c.S.Mode != ModeLanded {
		c.setMode(ModeLanding)
	}
}

// Landed reports whether the mission has ended on the ground with motors
// idle.
func (c *Controller) Landed() bool { return c.S.Mode == ModeLanded }

const (
	// groundSPM is the altitude setpoint, below the ground, that a landing
	// descends to before it may judge itself on the ground.
	groundSPM = -0.5
	// landingMarginS is how long a landing may go on past that point, in
	// control time, before it is given up.
	landingMarginS = 6.0
)

// LandingOverdue reports a landing that has not ended landingMarginS after
// its setpoint reached groundSPM: a landing stuck on a bad estimate, which
// the app ends by idling the motors. It is counted in control time (the
// setpoint moves one step a tick), not the wall clock: a loaded machine
// that skips ticks descends more slowly in wall time, and must not have its
// landing cut short for it.
func (c *Controller) LandingOverdue() bool {
	return c.S.Mode == ModeLanding && c.S.AltSP < groundSPM-landingMarginS*c.m.DescentM
}

func (c *Controller) setMode(m Mode) {
	c.S.Mode = m
	c.S.ModeTick = c.S.Tick
}

func (c *Controller) modeSeconds() float64 { return float64(c.S.Tick-c.S.ModeTick) * c.dt }

// Step advances one tick and returns the motor throttles to write. The
// estimate and the integrators cover the time since the last step's
// sample (elapsed); the mission moves one tick (control time).
func (c *Controller) Step(in Sensors) [4]float64 {
	dt := c.elapsed(in)
	c.estimate(in, dt)
	c.mission()
	out := c.control(in, dt)
	c.S.Out = out
	c.S.Tick++
	c.S.LastNs = in.TimeNs
	return out
}

// MaxElapsed bounds the time one step integrates. A loop that overran
// skips ticks, and its next sample covers them all; a longer gap is a
// stopped process (SIGSTOP, a frozen machine), and one gyro sample says
// nothing of what the aircraft did meanwhile.
const MaxElapsed = 50 * time.Millisecond

// elapsed is the time from the last step's sample to in, in seconds: one
// tick when either time is unknown or they are not in order, at most
// MaxElapsed.
func (c *Controller) elapsed(in Sensors) float64 {
	last := c.S.LastNs
	if in.TimeNs == 0 || last == 0 || in.TimeNs <= last {
		return c.dt
	}
	return min(time.Duration(in.TimeNs-last), MaxElapsed).Seconds()
}

// estimate runs the complementary filters over dt seconds.
func (c *Controller) estimate(in Sensors, dt float64) {
	s := &c.S
	roll, pitch := s.Att[0], s.Att[1]
	p, q, r := in.Gyro[0], in.Gyro[1], in.Gyro[2]
	sr, cr := math.Sincos(roll)
	sp, cp := math.Sincos(pitch)
	if math.Abs(cp) < 0.1 {
		cp = math.Copysign(0.1, cp)
	}
	tp := sp / cp
	// Euler angle rates from body rates (ZYX).
	roll += (p + sr*tp*q + cr*tp*r) * dt
	pitch += (cr*q - sr*r) * dt
	yaw := s.Att[2] + (sr*q+cr*r)/cp*dt

	// Tilt from gravity when the accelerometer reads about 1 g.
	ax, ay, az := in.Accel[0], in.Accel[1], in.Accel[2]
	norm := math.Sqrt(ax*ax + ay*ay + az*az)
	if norm > 0.8*gravity && norm < 1.2*gravity {
		const tau = 5.0 // s: trust the gyro over shorter spans
		k := dt / (tau + dt)
		roll += k * (math.Atan2(ay, az) - roll)
		pitch += k * (math.Atan2(-ax, math.Hypot(ay, az)) - pitch)
	}
	s.Att = [3]float64{roll, pitch, wrap(yaw)}

	// Vertical: integrate world-frame acceleration, correct with the baro.
	sr, cr = math.Sincos(roll)
	sp, cp = math.Sincos(pitch)
	az = -sp*ax + sr*cp*ay + cr*cp*az - gravity
	s.Alt += s.VZ*dt + 0.5*az*dt*dt
	s.VZ += az * dt
	if in.BaroValid && s.BaroRefPa > 0 {
		// Observer poles at 3 rad/s (critically damped), applied at the
		// barometer's rate: gains scale with the time since its last sample.
		const k1, k2 = 6.0, 9.0
		e := baro.Altitude(in.BaroPa, s.BaroRefPa) - s.Alt
		span := c.baroSpan()
		s.Alt += k1 * span * e
		s.VZ += k2 * span * e
	}
	c.gyro = in.Gyro
}

// BaroEvery is how many ticks apart the app feeds barometer samples; the
// observer's gains assume it.
const BaroEvery = 8

func (c *Controller) baroSpan() float64 { return BaroEvery * c.dt }

// mission advances setpoints and modes.
func (c *Controller) mission() {
	s := &c.S
	m := c.m
	s.AttSP = [3]float64{0, 0, 0}
	s.VZSP = 0
	switch s.Mode {
	case ModeTakeoff:
		s.VZSP = m.ClimbMS
		s.AltSP += m.ClimbMS * c.dt
		if s.AltSP >= m.AltM {
			s.AltSP, s.VZSP = m.AltM, 0
			c.setMode(ModeHover)
		}
	case ModeHover:
		s.AltSP = m.AltM
		if m.Pattern == "box" && c.modeSeconds() >= m.HoverS {
			c.setMode(ModePattern)
		}
	case ModePattern:
		s.AltSP = m.AltM
		s.AttSP = boxAttitude(c.modeSeconds())
	case ModeLanding:
		s.VZSP = -m.DescentM
		s.AltSP -= m.DescentM * c.dt
		// On the ground when the setpoint is well below it and the
		// estimate has stopped falling.
		if s.AltSP < groundSPM && s.Alt < 0.3 && math.Abs(s.VZ) < 0.3 {
			c.setMode(ModeLanded)
		}
	}
}

// boxAttitude is the pattern: 2 s tilted 2° forward, 2 s level, 2 s right,
// level, back, level, left, level; then again.
func boxAttitude(t float64) [3]float64 {
	const tilt = 2 * math.Pi / 180
	dirs := [4][2]float64{{0, tilt}, {-tilt, 0}, {0, -tilt}, {tilt, 0}} // {roll, pitch}: fwd, right, back, left
	slot := int(t/2) % 8
	if slot%2 == 1 {
		return [3]float64{}
	}
	d := dirs[slot/2]
	return [3]float64{d[0], d[1], 0}
}

// control computes throttles from the estimate and setpoints; the
// integrators take in dt seconds of error.
func (c *Controller) control(in Sensors, dt float64) [4]float64 {
	s := &c.S
	if s.Mode == ModeLanded {
		s.RateI = [3]float64{}
		s.AltI = 0
		return [4]float64{}
	}
	g := c.g
	air := c.air

	// Altitude → collective thrust.
	altErr := s.AltSP - s.Alt
	// Integrate only once off the ground: a quad sitting on the ground
	// cannot follow, and the integrator would wind up.
	airborne := s.Alt > 0.15 || s.AltSP > 0.3
	if airborne {
		s.AltI = clamp(s.AltI+altErr*dt, -g.AltILim, g.AltILim)
	}
	acc := g.AltP*altErr + g.AltD*(s.VZSP-s.VZ) + g.AltI*s.AltI
	tilt := math.Cos(s.Att[0]) * math.Cos(s.Att[1])
	if tilt < 0.7 {
		tilt = 0.7
	}
	thrust := air.MassKg * (gravity + acc) / tilt
	maxTotal := 4 * air.MaxThrustN
	thrust = clamp(thrust, 0.05*maxTotal, 0.85*maxTotal)

	// Attitude → rates → angular acceleration → torque.
	var torque [3]float64
	for i := range 3 {
		e := s.AttSP[i] - s.Att[i]
		if i == 2 {
			e = wrap(e)
		}
		rateSP := g.AttP[i] * e
		re := rateSP - in.Gyro[i]
		if airborne {
			s.RateI[i] = clamp(s.RateI[i]+re*dt, -g.RateILim, g.RateILim)
		}
		alpha := g.RateP[i]*re + g.RateI[i]*s.RateI[i]
		torque[i] = air.Inertia[i] * alpha
	}
	return mix(air, thrust, torque)
}

// Mixer sign vectors: motor i's lever on roll (its y), pitch (its x) and
// its spin's yaw reaction.
var (
	signY   = [4]float64{+1, -1, -1, +1}
	signX   = [4]float64{+1, +1, -1, -1}
	signYaw = [4]float64{+1, -1, +1, -1}
)

// mix shares thrust and torque among the motors and converts thrust to
// throttle (thrust grows with the square of throttle).
func mix(air Airframe, thrust float64, torque [3]float64) [4]float64 {
	d := air.ArmM / math.Sqrt2
	var t [4]float64
	for i := range 4 {
		t[i] = thrust/4 + torque[0]/(4*d)*signY[i] - torque[1]/(4*d)*signX[i] + torque[2]/(4*air.YawCoefM)*signYaw[i]
	}
	var out [4]float64
	for i := range 4 {
		out[i] = math.Sqrt(clamp(t[i], 0, air.MaxThrustN) / air.MaxThrustN)
	}
	return out
}

const gravity = 9.80665

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// wrap maps an angle to (-π, π].
func wrap(a float64) float64 {
	for a > math.Pi {
		a -= 2 * math.Pi
	}
	for a <= -math.Pi {
		a += 2 * math.Pi
	}
	return a
}
