// Package physics simulates the virtual drone's airframe in real time: a
// quadcopter rigid body with four ESCs and motors, gravity, drag, gusts,
// ground contact and crash detection, plus the IMU and barometer readings
// the drone's sensors would see.
//
// # Frames
//
// The world frame is x north, y west, z up; the ground is the plane z = 0 and
// the altitude is z. The body frame is FLU: x forward, y left, z up. The
// attitude is a unit quaternion that rotates body vectors into the world
// frame.
//
// Euler angles are the standard ZYX (yaw, then pitch, then roll) sequence,
// with right-handed rotations about the FLU axes, in radians:
//
//   - Roll φ is about body x (forward). Positive roll lifts the left side and
//     lowers the right side; the thrust then pushes the drone to its right.
//   - Pitch θ is about body y (left). Positive pitch lowers the nose and
//     raises the tail; the thrust then pushes the drone forward.
//   - Yaw ψ is about z (up). Positive yaw turns the nose left, i.e.
//     counter-clockwise seen from above; yaw 0 faces north, +π/2 faces west.
//
// Body rates are the angular velocity in the body frame, so a positive roll
// rate raises the left side.
//
// # Motors
//
// The frame is an X with arm length L from the centre to each motor. With
// d = L/√2, motors sit at (x, y) in the body frame:
//
//	0 front-left  (+d, +d)  spins CW  seen from above
//	1 front-right (+d, −d)  spins CCW
//	2 rear-right  (−d, −d)  spins CW
//	3 rear-left   (−d, +d)  spins CCW
//
// Each motor pushes along body +z with thrust T = MaxThrust·m², where m is the
// motor's speed fraction (0 stopped, 1 full speed). The body torques are
//
//	τx = Σ yᵢTᵢ = d·(T0 − T1 − T2 + T3)   more thrust on the left (0, 3) rolls positive
//	τy = −Σ xᵢTᵢ = d·(−T0 − T1 + T2 + T3) more thrust at the front (0, 1) pitches negative (nose up)
//	τz = Kq·(T0 − T1 + T2 − T3)           more thrust on the CW props (0, 2) yaws positive (left)
//
// A clockwise propeller's reaction torque turns the body counter-clockwise,
// hence the sign of τz.
//
// # ESCs
//
// Each ESC reads a PWM pulse train ([Pulse]). A pulse is valid when it is
// present, its period is at least [MinPeriod] (at most 500 Hz) and its width
// is positive and shorter than the period; anything else counts as no
// signal. Throttle is clamp((Width − 1000 µs)/1000 µs, 0, 1).
//
// An ESC starts disarmed and keeps its motor stopped until it has seen valid
// pulses no wider than [ArmWidth] continuously for Params.ArmTime. Once
// armed, a missing signal cuts the throttle to zero at once, and after
// Params.SignalLoss without valid pulses the ESC disarms; it then needs
// low pulses again to re-arm. The motor speed follows the throttle with a
// first-order lag of time constant Params.MotorTau.
//
// # Ground and crashes
//
// The body never goes below z = 0. While it touches the ground and the
// thrust cannot lift it, it rests: velocity and rates are zero and the
// attitude is levelled, keeping only its yaw. It is airborne when z is above
// [AirborneHeight]. It crashes when it touches the ground falling faster than
// Params.CrashSpeed or tilted more than [LandingTiltLimit], or when it tilts
// past [FlipTiltLimit] in the air. A crash is latched: the motors stop, the
// body falls if it was in the air and then lies on the ground with the
// attitude it hit the ground with.
//
// # Integration
//
// [Quad.Step] integrates with a fixed sub-step (Params.Step, 1 ms by
// default) using semi-implicit Euler for the translation and the angular
// rates, an exact rotation of the quaternion for each sub-step (renormalised),
// and exact first-order updates for the motor lags and the gust processes.
// Everything is deterministic: gusts and sensor noise come from math/rand/v2
// generators seeded from [Gusts.Seed] and [Noise.Seed], and time is simulated,
// never read from a clock.
package physics
