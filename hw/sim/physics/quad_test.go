package physics

import (
	"math"
	"testing"
	"time"
)

const ms = time.Millisecond

// pulse returns a valid 400 Hz pulse commanding throttle t.
func pulse(t float64) Pulse {
	return Pulse{
		Width:   MinWidth + time.Duration(math.Round(t*float64(MaxWidth-MinWidth))),
		Period:  2500 * time.Microsecond,
		Present: true,
	}
}

func all(p Pulse) [4]Pulse { return [4]Pulse{p, p, p, p} }

// hovering returns a config for a quad hovering at altitude z with armed
// ESCs and motors already at hover speed.
func hovering(z float64) Config {
	h := DefaultParams().HoverSpeed()
	return Config{Start: Start{Pos: [3]float64{0, 0, z}, Armed: true, Motors: [4]float64{h, h, h, h}}}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestFreeFall(t *testing.T) {
	noDrag := DefaultParams()
	noDrag.DragLinear, noDrag.DragQuad = 0, 0
	tests := []struct {
		name     string
		params   Params
		min, max time.Duration
	}{
		// sqrt(2·10/g) = 1.428 s.
		{"no drag", noDrag, 1427 * ms, 1430 * ms},
		// Drag slows the fall (terminal speed about 11 m/s).
		{"default drag", Params{}, 1450 * ms, 1700 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Config{Params: tt.params, Start: Start{Pos: [3]float64{0, 0, 10}}})
			var hit time.Duration
			for q.State().Time < 3*time.Second {
				q.Step(ms, [4]Pulse{})
				if s := q.State(); s.Pos[2] == 0 && hit == 0 {
					hit = s.Time
				}
			}
			if hit < tt.min || hit > tt.max {
				t.Errorf("hit the ground at %v, want %v..%v", hit, tt.min, tt.max)
			}
			s := q.State()
			if !s.Crashed || s.Airborne || s.Pos[2] != 0 || s.Vel != [3]float64{} {
				t.Errorf("after the fall: crashed %v airborne %v pos %v vel %v, want crashed at rest on the ground",
					s.Crashed, s.Airborne, s.Pos, s.Vel)
			}
		})
	}
}

func TestESC(t *testing.T) {
	low := pulse(0)
	high := pulse(0.5)
	fast := low
	fast.Period = time.Millisecond // 1 kHz: not accepted
	type seg struct {
		in  Pulse
		dur time.Duration
	}
	tests := []struct {
		name       string
		armed      bool // start armed
		segs       []seg
		wantArmed  bool
		wantMotors bool // motors turning at the end
	}{
		{"starts disarmed", false, nil, false, false},
		{"low pulses short of arm time", false, []seg{{low, 299 * ms}}, false, false},
		{"low pulses for arm time", false, []seg{{low, 300 * ms}}, true, false},
		{"high pulses never arm", false, []seg{{high, time.Second}}, false, false},
		{"high pulses before arming do nothing", false, []seg{{high, 500 * ms}, {low, 100 * ms}, {high, 100 * ms}}, false, false},
		{"armed then throttle", false, []seg{{low, 300 * ms}, {high, 100 * ms}}, true, true},
		{"gap restarts arming", false, []seg{{low, 200 * ms}, {Pulse{}, ms}, {low, 200 * ms}}, false, false},
		{"pulses too fast", false, []seg{{fast, time.Second}}, false, false},
		{"signal loss short", true, []seg{{high, 100 * ms}, {Pulse{}, 99 * ms}}, true, false},
		{"signal loss disarms", true, []seg{{high, 100 * ms}, {Pulse{}, 100 * ms}}, false, false},
		{"disarmed by loss stays disarmed", true, []seg{{Pulse{}, 100 * ms}, {high, time.Second}}, false, false},
		{"re-arm after loss", true, []seg{{Pulse{}, 100 * ms}, {low, 300 * ms}, {high, 100 * ms}}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Config{Start: Start{Armed: tt.armed}})
			for _, s := range tt.segs {
				for range s.dur / ms {
					q.Step(ms, all(s.in))
				}
			}
			s := q.State()
			for i := range 4 {
				if s.Armed[i] != tt.wantArmed {
					t.Errorf("ESC %d armed = %v, want %v", i, s.Armed[i], tt.wantArmed)
				}
				// A cut throttle decays; "turning" means above a few percent.
				if turning := s.Motors[i] > 0.05; turning != tt.wantMotors {
					t.Errorf("motor %d speed %.3f, want turning %v", i, s.Motors[i], tt.wantMotors)
				}
			}
		})
	}
}

func TestSignalLossCutsThrottleAtOnce(t *testing.T) {
	q := New(hovering(5))
	q.Step(ms, all(Pulse{}))
	s := q.State()
	want := DefaultParams().HoverSpeed() * math.Exp(-1.0/30)
	for i, m := range s.Motors {
		if !near(m, want, 1e-9) || !s.Armed[i] {
			t.Errorf("motor %d: speed %v armed %v, want %v armed after 1 ms without pulses", i, m, s.Armed[i], want)
		}
	}
}

func TestMotorLag(t *testing.T) {
	tests := []struct {
		name string
		tau  time.Duration
	}{
		{"default 30 ms", 0},
		{"60 ms", 60 * ms},
		{"5 ms", 5 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			if tt.tau != 0 {
				p.MotorTau = tt.tau
			}
			q := New(Config{Params: p, Start: Start{Armed: true}})
			for _, n := range []int{1, 2, 3} {
				for range p.MotorTau / ms {
					q.Step(ms, all(pulse(1)))
				}
				want := 1 - math.Exp(-float64(n))
				for i, m := range q.State().Motors {
					if !near(m, want, 1e-9) {
						t.Errorf("after %d·tau motor %d speed = %.4f, want %.4f", n, i, m, want)
					}
				}
			}
		})
	}
}

func TestHover(t *testing.T) {
	q := New(hovering(1))
	in := all(pulse(DefaultParams().HoverSpeed()))
	for range 2000 {
		q.Step(ms, in)
		s := q.State()
		if !near(s.Pos[2], 1, 0.05) || !s.Airborne || s.Crashed {
			t.Fatalf("at %v: altitude %.4f airborne %v crashed %v, want 1±0.05 airborne", s.Time, s.Pos[2], s.Airborne, s.Crashed)
		}
	}
	s := q.State()
	if Tilt(s) > 1e-9 || math.Hypot(s.Pos[0], s.Pos[1]) > 1e-9 {
		t.Errorf("tilt %v, horizontal position %v; want level and still", Tilt(s), s.Pos)
	}
}

func TestGround(t *testing.T) {
	h := DefaultParams().HoverSpeed()
	tests := []struct {
		name         string
		throttle     float64
		wantAirborne bool
	}{
		{"idle", 0, false},
		{"below hover", 0.9 * h, false},
		{"above hover", 1.2 * h, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Config{Start: Start{Armed: true}})
			for range 1000 {
				q.Step(ms, all(pulse(tt.throttle)))
				if s := q.State(); s.Pos[2] < 0 {
					t.Fatalf("sank to %v", s.Pos[2])
				}
			}
			s := q.State()
			if s.Airborne != tt.wantAirborne || s.Crashed {
				t.Errorf("airborne %v crashed %v at %v, want airborne %v", s.Airborne, s.Crashed, s.Pos, tt.wantAirborne)
			}
		})
	}
}

func TestContact(t *testing.T) {
	deg := math.Pi / 180
	h := DefaultParams().HoverSpeed()
	tests := []struct {
		name        string
		start       Start
		throttle    float64
		wantCrashed bool
	}{
		{"gentle landing", Start{Pos: [3]float64{0, 0, 0.3}, Vel: [3]float64{0, 0, -1}, Armed: true, Motors: [4]float64{h, h, h, h}}, h, false},
		{"hard landing", Start{Pos: [3]float64{0, 0, 0.3}, Vel: [3]float64{0, 0, -3}, Armed: true, Motors: [4]float64{h, h, h, h}}, h, true},
		{"small drop tilted 20°", Start{Pos: [3]float64{0, 0, 0.1}, Roll: 20 * deg}, 0, false},
		{"small drop tilted 40°", Start{Pos: [3]float64{0, 0, 0.1}, Roll: 40 * deg}, 0, true},
		{"small drop pitched 40°", Start{Pos: [3]float64{0, 0, 0.1}, Pitch: -40 * deg}, 0, true},
		{"flipped in the air", Start{Pos: [3]float64{0, 0, 20}, Roll: 100 * deg, Armed: true, Motors: [4]float64{h, h, h, h}}, h, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Config{Start: tt.start})
			for range 3000 {
				q.Step(ms, all(pulse(tt.throttle)))
			}
			s := q.State()
			if s.Crashed != tt.wantCrashed {
				t.Errorf("crashed = %v, want %v", s.Crashed, tt.wantCrashed)
			}
			if s.Pos[2] != 0 || s.Vel != [3]float64{} || s.Rates != [3]float64{} {
				t.Errorf("pos %v vel %v rates %v, want at rest on the ground", s.Pos, s.Vel, s.Rates)
			}
			if !tt.wantCrashed && Tilt(s) > 1e-9 {
				t.Errorf("tilt %v after landing, want level", Tilt(s))
			}
			if tt.wantCrashed && s.Motors != [4]float64{} {
				t.Errorf("motors %v after a crash, want stopped", s.Motors)
			}
		})
	}
}

func TestCrashLatched(t *testing.T) {
	q := New(Config{Start: Start{Pos: [3]float64{0, 0, 5}, Roll: 2, Armed: true}})
	q.Step(ms, all(pulse(1)))
	if !q.State().Crashed {
		t.Fatal("not crashed upside down in the air")
	}
	for range 5000 {
		q.Step(ms, all(pulse(1)))
	}
	s := q.State()
	if !s.Crashed || s.Motors != [4]float64{} || s.Pos[2] != 0 {
		t.Errorf("crashed %v motors %v altitude %v, want crashed, stopped, on the ground", s.Crashed, s.Motors, s.Pos[2])
	}
	q.Reset()
	if s := q.State(); s.Crashed || s.Pos[2] != 5 || s.Time != 0 {
		t.Errorf("after Reset: crashed %v altitude %v time %v, want the start state", s.Crashed, s.Pos[2], s.Time)
	}
}

// TestConventions pins the frame and sign conventions in the package doc.
func TestConventions(t *testing.T) {
	h := DefaultParams().HoverSpeed()
	const d = 0.02
	hi, lo := pulse(h+d), pulse(h-d)
	deg := math.Pi / 180
	tests := []struct {
		name  string
		start Start      // starting attitude (hovering at 20 m)
		in    [4]Pulse   // motor inputs
		rates [3]float64 // want the sign of each body rate (0: stays zero)
		euler [3]float64 // want the sign of roll, pitch, yaw
		vel   [2]float64 // want the sign of world vx, vy (0: stays zero)
	}{
		{"left motors high rolls positive, drifts right", Start{}, [4]Pulse{hi, lo, lo, hi}, [3]float64{1, 0, 0}, [3]float64{1, 0, 0}, [2]float64{0, -1}},
		{"front motors high pitches negative, drifts back", Start{}, [4]Pulse{hi, hi, lo, lo}, [3]float64{0, -1, 0}, [3]float64{0, -1, 0}, [2]float64{-1, 0}},
		{"CW motors high yaws positive (left)", Start{}, [4]Pulse{hi, lo, hi, lo}, [3]float64{0, 0, 1}, [3]float64{0, 0, 1}, [2]float64{0, 0}},
		{"positive roll drifts right (east)", Start{Roll: 5 * deg}, all(pulse(h)), [3]float64{}, [3]float64{1, 0, 0}, [2]float64{0, -1}},
		{"positive pitch drifts forward (north)", Start{Pitch: 5 * deg}, all(pulse(h)), [3]float64{}, [3]float64{0, 1, 0}, [2]float64{1, 0}},
		{"facing west, positive pitch drifts west", Start{Pitch: 5 * deg, Yaw: 90 * deg}, all(pulse(h)), [3]float64{}, [3]float64{0, 1, 1}, [2]float64{0, 1}},
	}
	sign := func(v, tol float64) float64 {
		switch {
		case v > tol:
			return 1
		case v < -tol:
			return -1
		}
		return 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hovering(20)
			cfg.Start.Roll, cfg.Start.Pitch, cfg.Start.Yaw = tt.start.Roll, tt.start.Pitch, tt.start.Yaw
			q := New(cfg)
			for range 300 {
				q.Step(ms, tt.in)
			}
			s := q.State()
			for k := range 3 {
				if got := sign(s.Rates[k], 1e-9); got != tt.rates[k] {
					t.Errorf("rate %d = %v, want sign %v", k, s.Rates[k], tt.rates[k])
				}
			}
			for k, a := range [3]float64{s.Roll, s.Pitch, s.Yaw} {
				if got := sign(a, 1e-9); got != tt.euler[k] {
					t.Errorf("Euler angle %d = %v, want sign %v", k, a, tt.euler[k])
				}
			}
			for k := range 2 {
				if got := sign(s.Vel[k], 1e-9); got != tt.vel[k] {
					t.Errorf("velocity %d = %v, want sign %v", k, s.Vel[k], tt.vel[k])
				}
			}
		})
	}
}

func TestAttitudeAxes(t *testing.T) {
	deg := math.Pi / 180
	tests := []struct {
		name             string
		roll, pitch, yaw float64
		body, want       [3]float64 // body vector and its world direction
	}{
		{"positive roll lifts the left side", 90 * deg, 0, 0, [3]float64{0, 1, 0}, [3]float64{0, 0, 1}},
		{"positive pitch lowers the nose", 0, 90 * deg, 0, [3]float64{1, 0, 0}, [3]float64{0, 0, -1}},
		{"positive yaw turns the nose west", 0, 0, 90 * deg, [3]float64{1, 0, 0}, [3]float64{0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := FromEuler(tt.roll, tt.pitch, tt.yaw)
			got := q.Rotate(tt.body)
			for k := range 3 {
				if !near(got[k], tt.want[k], 1e-12) {
					t.Fatalf("body %v -> world %v, want %v", tt.body, got, tt.want)
				}
			}
			r, p, y := q.Euler()
			if !near(r, tt.roll, 1e-6) || !near(p, tt.pitch, 1e-6) || !near(y, tt.yaw, 1e-6) {
				t.Errorf("Euler() = %v %v %v, want %v %v %v", r, p, y, tt.roll, tt.pitch, tt.yaw)
			}
		})
	}
}

func TestGusts(t *testing.T) {
	run := func(g Gusts) State {
		cfg := hovering(20)
		cfg.Gusts = g
		q := New(cfg)
		in := all(pulse(DefaultParams().HoverSpeed()))
		for range 3000 {
			q.Step(ms, in)
		}
		return q.State()
	}
	gust := Gusts{Force: 0.5, Torque: 0.001, Tau: 500 * ms, Seed: 7}
	a, b := run(gust), run(gust)
	if a != b {
		t.Errorf("same seed, different runs:\n%+v\n%+v", a, b)
	}
	other := gust
	other.Seed = 8
	if c := run(other); c.Pos == a.Pos {
		t.Errorf("different seeds gave the same position %v", c.Pos)
	}
	if math.Hypot(a.Pos[0], a.Pos[1]) < 0.01 || Tilt(a) == 0 {
		t.Errorf("gusts moved the quad %v and tilted it %v, want visibly", a.Pos, Tilt(a))
	}
	if calm := run(Gusts{}); calm.Pos != [3]float64{0, 0, calm.Pos[2]} || Tilt(calm) != 0 {
		t.Errorf("calm air moved the quad to %v tilt %v", calm.Pos, Tilt(calm))
	}
}

func TestGustStatistics(t *testing.T) {
	q := New(Config{Gusts: Gusts{Force: 2, Torque: 0.1, Tau: 100 * ms, Seed: 1}})
	const n = 400000 // 400 s of 1 ms steps: about 4000 correlation times
	var sum, sq [5]float64
	for range n {
		q.stepGusts(0.001)
		v := [5]float64{q.gustForce[0], q.gustForce[1], q.gustTorque[0], q.gustTorque[1], q.gustTorque[2]}
		for k := range v {
			sum[k] += v[k]
			sq[k] += v[k] * v[k]
		}
	}
	for k, want := range [5]float64{2, 2, 0.1, 0.1, 0.1} {
		mean := sum[k] / n
		std := math.Sqrt(sq[k]/n - mean*mean)
		if !near(std, want, 0.1*want) || math.Abs(mean) > 0.1*want {
			t.Errorf("component %d: mean %.4f std %.4f, want 0 and %v", k, mean, std, want)
		}
	}
}

func TestIMU(t *testing.T) {
	g := DefaultParams().Gravity
	noDrag := DefaultParams()
	noDrag.DragLinear, noDrag.DragQuad = 0, 0
	tests := []struct {
		name string
		cfg  Config
		in   [4]Pulse
		want [3]float64
	}{
		{"at rest", Config{}, [4]Pulse{}, [3]float64{0, 0, g}},
		{"hover", hovering(3), all(pulse(DefaultParams().HoverSpeed())), [3]float64{0, 0, g}},
		{"free fall", Config{Params: noDrag, Start: Start{Pos: [3]float64{0, 0, 50}}}, [4]Pulse{}, [3]float64{}},
		{"rest facing west", Config{Start: Start{Yaw: 1.5}}, [4]Pulse{}, [3]float64{0, 0, g}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(tt.cfg)
			for range 500 {
				q.Step(ms, tt.in)
			}
			accel, gyro := q.IMU()
			for k := range 3 {
				if !near(accel[k], tt.want[k], 1e-4) || !near(gyro[k], 0, 1e-9) {
					t.Fatalf("IMU() = %v, %v; want %v, 0", accel, gyro, tt.want)
				}
			}
		})
	}
}

func TestSensorNoise(t *testing.T) {
	noise := Noise{Gyro: 0.01, Accel: 0.2, Baro: 0.5, Seed: 3}
	q := New(Config{Noise: noise})
	r := New(Config{Noise: noise})
	const n = 20000
	var sum, sq float64
	for range n {
		a, gy := q.IMU()
		b, gz := r.IMU()
		if a != b || gy != gz {
			t.Fatalf("same seed, different readings %v %v / %v %v", a, gy, b, gz)
		}
		sum += a[0]
		sq += a[0] * a[0]
	}
	mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	if math.Abs(mean) > 0.01 || !near(std, 0.2, 0.01) {
		t.Errorf("accel x noise: mean %.4f std %.4f, want 0 and 0.2", mean, std)
	}
	p1, _ := q.Baro()
	p2, _ := r.Baro()
	if p1 != p2 || p1 == 101325 {
		t.Errorf("baro readings %v and %v, want equal and noisy", p1, p2)
	}
}

func TestBaro(t *testing.T) {
	tests := []struct {
		name string
		z    float64
		want float64 // Pa
	}{
		{"ground", 0, 101325},
		{"1 m", 1, 101313.0},
		{"10 m", 10, 101204.9},
		{"100 m", 100, 100129.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Config{Start: Start{Pos: [3]float64{0, 0, tt.z}}})
			p, temp := q.Baro()
			if !near(p, tt.want, 0.5) || temp != 25 {
				t.Errorf("Baro() = %.2f Pa, %v °C; want %.1f Pa, 25 °C", p, temp, tt.want)
			}
		})
	}
	p0, _ := New(Config{}).Baro()
	p1, _ := New(Config{Start: Start{Pos: [3]float64{0, 0, 1}}}).Baro()
	if d := p0 - p1; !near(d, 12, 0.1) {
		t.Errorf("pressure drops %.3f Pa in the first metre, want about 12", d)
	}
}

func TestStepSplitsTime(t *testing.T) {
	a := New(hovering(2))
	b := New(hovering(2))
	in := all(pulse(0.7))
	a.Step(10*ms+500*time.Microsecond, in)
	for range 10 {
		b.Step(ms, in)
	}
	b.Step(500*time.Microsecond, in)
	if sa, sb := a.State(), b.State(); sa != sb {
		t.Errorf("one 10.5 ms step %+v\n!= ten 1 ms steps and a half %+v", sa, sb)
	}
	a.Step(0, in)
	a.Step(-ms, in)
	if s := a.State(); s.Time != 10*ms+500*time.Microsecond {
		t.Errorf("time %v after non-positive steps, want 10.5ms", s.Time)
	}
}
