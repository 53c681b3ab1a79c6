package physics

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// State is the true state of the quad.
type State struct {
	Time             time.Duration // simulated time since New or Reset
	Pos              [3]float64    // world position, m (Pos[2] is the altitude)
	Vel              [3]float64    // world velocity, m/s
	Att              Quaternion    // attitude, body to world
	Rates            [3]float64    // body angular velocity, rad/s
	Roll, Pitch, Yaw float64       // ZYX Euler angles of Att, rad
	Motors           [4]float64    // motor speed fractions, 0 stopped .. 1 full
	Armed            [4]bool       // the ESCs that are armed
	Airborne         bool          // altitude above AirborneHeight
	Crashed          bool          // latched crash
}

// Tilt returns the angle between the body z axis and the world z axis of s,
// in radians: 0 level, π/2 on its side, π upside down.
func Tilt(s State) float64 {
	return s.Att.tilt()
}

// Quad is a simulated quadcopter. It is safe for concurrent use: a
// simulation loop may call Step while sensor models call IMU and Baro.
type Quad struct {
	mu  sync.Mutex
	cfg Config
	p   Params

	t       time.Duration
	pos     [3]float64
	vel     [3]float64
	att     Quaternion
	w       [3]float64
	acc     [3]float64 // world acceleration over the last sub-step
	esc     [4]esc
	motor   [4]float64
	crashed bool

	gustForce  [2]float64
	gustTorque [3]float64
	gustRand   *rand.Rand
	noiseRand  *rand.Rand
}

// esc is the arming state of one ESC.
type esc struct {
	armed bool
	low   time.Duration // continuous low pulses seen while disarmed
	lost  time.Duration // time without a valid signal while armed
}

// update advances the ESC by h with input p and returns the throttle it
// drives its motor with.
func (e *esc) update(p Pulse, h time.Duration, par *Params) float64 {
	valid := p.valid()
	if !e.armed {
		if valid && p.Width <= ArmWidth {
			e.low += h
			if e.low >= par.ArmTime {
				e.armed, e.low, e.lost = true, 0, 0
			}
		} else {
			e.low = 0
		}
		return 0
	}
	if !valid {
		e.lost += h
		if e.lost >= par.SignalLoss {
			e.armed, e.low, e.lost = false, 0, 0
		}
		return 0
	}
	e.lost = 0
	return p.Throttle()
}

// New returns a quad in the configured start state. It panics if the mass
// or a moment of inertia is not positive.
func New(cfg Config) *Quad {
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams()
	}
	if cfg.Params.Step <= 0 {
		cfg.Params.Step = time.Millisecond
	}
	p := cfg.Params
	if p.Mass <= 0 || p.Ixx <= 0 || p.Iyy <= 0 || p.Izz <= 0 {
		panic("physics: mass and moments of inertia must be positive")
	}
	q := &Quad{cfg: cfg, p: p}
	q.reset()
	return q
}

// Reset returns the quad to its configured start state and restarts the
// gust and noise generators from their seeds, so that a reset quad repeats
// the same run given the same inputs.
func (q *Quad) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reset()
}

func (q *Quad) reset() {
	s := q.cfg.Start
	q.t = 0
	q.pos = s.Pos
	q.pos[2] = max(q.pos[2], 0)
	q.vel = s.Vel
	q.att = FromEuler(s.Roll, s.Pitch, s.Yaw)
	q.w = [3]float64{}
	q.acc = [3]float64{}
	q.esc = [4]esc{}
	for i := range q.esc {
		q.esc[i].armed = s.Armed
		q.motor[i] = clamp(s.Motors[i], 0, 1)
	}
	q.crashed = false
	q.gustForce = [2]float64{}
	q.gustTorque = [3]float64{}
	q.gustRand = rand.New(rand.NewPCG(uint64(q.cfg.Gusts.Seed), 0x67757374))  // "gust"
	q.noiseRand = rand.New(rand.NewPCG(uint64(q.cfg.Noise.Seed), 0x6e6f6973)) // "nois"
}

// Step advances the simulation by dt with the ESC inputs held constant,
// in sub-steps of at most Params.Step. A non-positive dt does nothing.
func (q *Quad) Step(dt time.Duration, in [4]Pulse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for dt > 0 {
		h := min(dt, q.p.Step)
		q.substep(h, &in)
		q.t += h
		dt -= h
	}
}

// substep advances the simulation by h.
func (q *Quad) substep(h time.Duration, in *[4]Pulse) {
	p := &q.p
	dt := h.Seconds()

	// ESCs and motors.
	lag := 1.0
	if p.MotorTau > 0 {
		lag = -math.Expm1(-dt / p.MotorTau.Seconds())
	}
	var thrust [4]float64
	var total float64
	for i := range 4 {
		thr := q.esc[i].update(in[i], h, p)
		if q.crashed {
			q.motor[i] = 0
			continue
		}
		q.motor[i] += (thr - q.motor[i]) * lag
		thrust[i] = p.MaxThrust * q.motor[i] * q.motor[i]
		total += thrust[i]
	}
	q.stepGusts(dt)

	// Forces in the world frame.
	zb := q.att.Rotate([3]float64{0, 0, 1})
	speed := math.Sqrt(q.vel[0]*q.vel[0] + q.vel[1]*q.vel[1] + q.vel[2]*q.vel[2])
	var f [3]float64
	for k := range 3 {
		f[k] = total*zb[k] - (p.DragLinear+p.DragQuad*speed)*q.vel[k]
	}
	f[0] += q.gustForce[0]
	f[1] += q.gustForce[1]
	f[2] -= p.Mass * p.Gravity

	// Torques in the body frame.
	d := p.Arm / math.Sqrt2
	tau := [3]float64{
		d * (thrust[0] - thrust[1] - thrust[2] + thrust[3]),
		d * (-thrust[0] - thrust[1] + thrust[2] + thrust[3]),
		p.Kq * (thrust[0] - thrust[1] + thrust[2] - thrust[3]),
	}
	inertia := [3]float64{p.Ixx, p.Iyy, p.Izz}
	iw := [3]float64{inertia[0] * q.w[0], inertia[1] * q.w[1], inertia[2] * q.w[2]}
	gyro := cross(q.w, iw)
	for k := range 3 {
		tau[k] += q.gustTorque[k] - p.AngDamping*q.w[k] - gyro[k]
	}

	// Resting on the ground: nothing moves until the thrust can lift it.
	if q.pos[2] <= 0 && (q.crashed || f[2] <= 0) {
		q.rest()
		q.acc = [3]float64{}
		return
	}

	// Semi-implicit Euler.
	old := q.vel
	for k := range 3 {
		q.vel[k] += f[k] / p.Mass * dt
		q.pos[k] += q.vel[k] * dt
		q.w[k] += tau[k] / inertia[k] * dt
	}
	q.att = q.att.integrate(q.w, dt)

	if q.pos[2] <= 0 {
		if -q.vel[2] > p.CrashSpeed || q.att.tilt() > LandingTiltLimit {
			q.crashed = true
		}
		q.pos[2] = 0
		q.rest()
	} else if q.att.tilt() > FlipTiltLimit {
		q.crashed = true
	}
	for k := range 3 {
		q.acc[k] = (q.vel[k] - old[k]) / dt
	}
}

// rest holds the body still on the ground, level unless it has crashed.
func (q *Quad) rest() {
	q.vel = [3]float64{}
	q.w = [3]float64{}
	if !q.crashed {
		_, _, yaw := q.att.Euler()
		q.att = FromEuler(0, 0, yaw)
	}
}

// stepGusts advances the Ornstein–Uhlenbeck gust processes by dt seconds
// with the exact discretisation x ← a·x + σ·sqrt(1−a²)·N(0,1), a = e^(−dt/τ),
// so that each component stays at standard deviation σ once settled. The
// processes start at zero.
func (q *Quad) stepGusts(dt float64) {
	g := q.cfg.Gusts
	if g.Force == 0 && g.Torque == 0 {
		return
	}
	tau := g.Tau.Seconds()
	if tau <= 0 {
		tau = 1
	}
	a := math.Exp(-dt / tau)
	s := math.Sqrt(1 - a*a)
	for k := range q.gustForce {
		q.gustForce[k] = a*q.gustForce[k] + g.Force*s*q.gustRand.NormFloat64()
	}
	for k := range q.gustTorque {
		q.gustTorque[k] = a*q.gustTorque[k] + g.Torque*s*q.gustRand.NormFloat64()
	}
}

// State returns the true state.
func (q *Quad) State() State {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := State{
		Time:     q.t,
		Pos:      q.pos,
		Vel:      q.vel,
		Att:      q.att,
		Rates:    q.w,
		Motors:   q.motor,
		Airborne: q.pos[2] > AirborneHeight,
		Crashed:  q.crashed,
	}
	s.Roll, s.Pitch, s.Yaw = q.att.Euler()
	for i := range q.esc {
		s.Armed[i] = q.esc[i].armed
	}
	return s
}

// IMU returns what a body-aligned (FLU) IMU reads, with noise: accel is the
// specific force (acceleration minus gravity) over the last sub-step in the
// body frame, m/s², so a level quad at rest or in hover reads {0, 0, +g};
// gyro is the body rates, rad/s. Each call draws fresh noise.
func (q *Quad) IMU() (accel, gyro [3]float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sf := q.acc
	sf[2] += q.p.Gravity
	accel = q.att.Conj().Rotate(sf)
	n := q.cfg.Noise
	for k := range 3 {
		gyro[k] = q.w[k]
		if n.Accel != 0 {
			accel[k] += n.Accel * q.noiseRand.NormFloat64()
		}
		if n.Gyro != 0 {
			gyro[k] += n.Gyro * q.noiseRand.NormFloat64()
		}
	}
	return accel, gyro
}

// Baro returns what the barometer reads: the ISA pressure in pascals at the
// altitude plus noise, p = 101325·(1 − 2.25577e-5·h)^5.25588 (about −12 Pa
// per metre near the ground), and a constant 25 °C.
func (q *Quad) Baro() (pressurePa, tempC float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.pos[2]
	if q.cfg.Noise.Baro != 0 {
		h += q.cfg.Noise.Baro * q.noiseRand.NormFloat64()
	}
	return 101325 * math.Pow(1-2.25577e-5*h, 5.25588), 25
}
