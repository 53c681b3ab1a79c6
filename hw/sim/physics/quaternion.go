package physics

import "math"

// Quaternion is a rotation W + Xi + Yj + Zk. An attitude quaternion rotates
// body vectors into the world frame. The zero Quaternion is not a rotation;
// methods treat it as the identity.
type Quaternion struct {
	W, X, Y, Z float64
}

// FromEuler returns the attitude with the given ZYX Euler angles in radians:
// yaw about z, then pitch about the new y, then roll about the new x.
func FromEuler(roll, pitch, yaw float64) Quaternion {
	sr, cr := math.Sincos(roll / 2)
	sp, cp := math.Sincos(pitch / 2)
	sy, cy := math.Sincos(yaw / 2)
	return Quaternion{
		W: cr*cp*cy + sr*sp*sy,
		X: sr*cp*cy - cr*sp*sy,
		Y: cr*sp*cy + sr*cp*sy,
		Z: cr*cp*sy - sr*sp*cy,
	}
}

// Euler returns the ZYX Euler angles of q in radians: roll and yaw in
// (−π, π], pitch in [−π/2, π/2].
func (q Quaternion) Euler() (roll, pitch, yaw float64) {
	q = q.norm()
	roll = math.Atan2(2*(q.W*q.X+q.Y*q.Z), 1-2*(q.X*q.X+q.Y*q.Y))
	pitch = math.Asin(clamp(2*(q.W*q.Y-q.Z*q.X), -1, 1))
	yaw = math.Atan2(2*(q.W*q.Z+q.X*q.Y), 1-2*(q.Y*q.Y+q.Z*q.Z))
	return roll, pitch, yaw
}

// Rotate rotates v by q: for an attitude, body to world.
func (q Quaternion) Rotate(v [3]float64) [3]float64 {
	q = q.norm()
	// v' = v + 2w(u×v) + 2u×(u×v), u = (X, Y, Z).
	u := [3]float64{q.X, q.Y, q.Z}
	c := cross(u, v)
	cc := cross(u, c)
	return [3]float64{
		v[0] + 2*(q.W*c[0]+cc[0]),
		v[1] + 2*(q.W*c[1]+cc[1]),
		v[2] + 2*(q.W*c[2]+cc[2]),
	}
}

// Conj returns the inverse rotation of a unit quaternion: for an attitude,
// world to body.
func (q Quaternion) Conj() Quaternion {
	return Quaternion{q.W, -q.X, -q.Y, -q.Z}
}

// Mul returns the product q·r: rotation r followed by rotation q.
func (q Quaternion) Mul(r Quaternion) Quaternion {
	return Quaternion{
		W: q.W*r.W - q.X*r.X - q.Y*r.Y - q.Z*r.Z,
		X: q.W*r.X + q.X*r.W + q.Y*r.Z - q.Z*r.Y,
		Y: q.W*r.Y - q.X*r.Z + q.Y*r.W + q.Z*r.X,
		Z: q.W*r.Z + q.X*r.Y - q.Y*r.X + q.Z*r.W,
	}
}

// norm returns q scaled to unit length; the zero Quaternion becomes the
// identity.
func (q Quaternion) norm() Quaternion {
	n := math.Sqrt(q.W*q.W + q.X*q.X + q.Y*q.Y + q.Z*q.Z)
	if n == 0 {
		return Quaternion{W: 1}
	}
	return Quaternion{q.W / n, q.X / n, q.Y / n, q.Z / n}
}

// integrate returns q turned by the body rates w (rad/s) held for dt seconds.
func (q Quaternion) integrate(w [3]float64, dt float64) Quaternion {
	rate := math.Sqrt(w[0]*w[0] + w[1]*w[1] + w[2]*w[2])
	if rate == 0 {
		return q.norm()
	}
	s, c := math.Sincos(rate * dt / 2)
	k := s / rate
	return q.Mul(Quaternion{c, w[0] * k, w[1] * k, w[2] * k}).norm()
}

// tilt is the angle between body z and world z, in radians.
func (q Quaternion) tilt() float64 {
	q = q.norm()
	return math.Acos(clamp(1-2*(q.X*q.X+q.Y*q.Y), -1, 1))
}

func cross(a, b [3]float64) [3]float64 {
	return [3]float64{
		a[1]*b[2] - a[2]*b[1],
		a[2]*b[0] - a[0]*b[2],
		a[0]*b[1] - a[1]*b[0],
	}
}

func clamp(v, lo, hi float64) float64 {
	return min(max(v, lo), hi)
}
