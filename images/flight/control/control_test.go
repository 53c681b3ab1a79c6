package control

import (
	"math"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/baro"
	"github.com/skyswap/skyswap/hw/sim/physics"
)

// TestMixerSigns: the mixer pushes each axis the right way for the motor
// layout (0 FL CW, 1 FR CCW, 2 RR CW, 3 RL CCW).
func TestMixerSigns(t *testing.T) {
	air := DefaultAirframe
	hover := air.MassKg * gravity
	cases := []struct {
		name   string
		torque [3]float64
		higher []int // motors that must run faster than the others
	}{
		{"roll left side up", [3]float64{0.05, 0, 0}, []int{0, 3}},
		{"pitch nose down", [3]float64{0, 0.05, 0}, []int{2, 3}},
		{"yaw nose left", [3]float64{0, 0, 0.02}, []int{0, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := mix(air, hover, tc.torque)
			hi := map[int]bool{}
			for _, i := range tc.higher {
				hi[i] = true
			}
			for i := range out {
				for j := range out {
					if hi[i] && !hi[j] && out[i] <= out[j] {
						t.Fatalf("motor %d (%.3f) not above motor %d (%.3f): %v", i, out[i], j, out[j], out)
					}
				}
			}
		})
	}
	// Collective only: all equal, at the hover throttle sqrt(m·g/4/Tmax).
	out := mix(air, hover, [3]float64{})
	want := math.Sqrt(hover / 4 / air.MaxThrustN)
	for i := range out {
		if math.Abs(out[i]-want) > 1e-9 {
			t.Fatalf("hover throttle %v, want %v each", out, want)
		}
	}
}

// fly runs the controller against the physics in simulated time (no I/O,
// no real clock) and returns the truth after each tick through check.
func fly(t *testing.T, cfg physics.Config, m Mission, seconds float64, check func(tick int, s physics.State, c *Controller)) {
	t.Helper()
	flySkipping(t, cfg, m, seconds, nil, check)
}

// flySkipping is fly with a loop that skips the ticks skip says (nil: none),
// as an overrunning loop does: the physics runs on, the motors hold the
// last output, and the next sample, stamped with its tick's time, covers
// the ticks skipped.
func flySkipping(t *testing.T, cfg physics.Config, m Mission, seconds float64, skip func(tick int) bool, check func(tick int, s physics.State, c *Controller)) {
	t.Helper()
	const rate = 400
	q := physics.New(cfg)
	p0, _ := q.Baro()
	c := New(rate, DefaultAirframe, DefaultGains, m, p0)
	pulse := func(u float64) physics.Pulse {
		return physics.Pulse{Width: time.Duration(1000+1000*u) * time.Microsecond, Period: 2457600 * time.Nanosecond, Present: true}
	}
	dt := time.Second / rate
	out := [4]float64{}
	for tick := 0; tick < int(seconds*rate); tick++ {
		if skip == nil || !skip(tick) {
			accel, gyro := q.IMU()
			in := Sensors{Accel: accel, Gyro: gyro, TimeNs: int64(tick+1) * int64(dt)}
			if tick%BaroEvery == 0 {
				p, _ := q.Baro()
				in.BaroPa, in.BaroValid = p, true
			}
			out = c.Step(in)
		}
		q.Step(dt, [4]physics.Pulse{pulse(out[0]), pulse(out[1]), pulse(out[2]), pulse(out[3])})
		check(tick, q.State(), c)
	}
}

// TestTakeoffHoverLand flies the whole mission in simulated time, with
// gusts and noise, and bounds the hover: altitude within 0.25 m and tilt
// within 6° once at altitude (the real-time end-to-end test in
// images/flight uses looser bounds for a loaded machine).
func TestTakeoffHoverLand(t *testing.T) {
	cfg := physics.Config{
		Gusts: physics.Gusts{Force: 0.5, Torque: 0.01, Tau: time.Second, Seed: 3},
		Noise: physics.Noise{Gyro: 0.005, Accel: 0.05, Baro: 0.05, Seed: 4},
		Start: physics.Start{Armed: true},
	}
	m := DefaultMission
	m.Pattern = "hover"
	var reached bool
	var maxAltErr, maxTilt float64
	fly(t, cfg, m, 16, func(tick int, s physics.State, c *Controller) {
		if s.Crashed {
			t.Fatalf("crashed at tick %d: %+v", tick, s)
		}
		if !reached && math.Abs(s.Pos[2]-m.AltM) < 0.1 {
			reached = true
		}
		if reached && c.S.Mode == ModeHover {
			maxAltErr = math.Max(maxAltErr, math.Abs(s.Pos[2]-m.AltM))
			maxTilt = math.Max(maxTilt, physics.Tilt(s)*180/math.Pi)
		}
		if tick == 14*400 {
			c.Land()
		}
	})
	t.Logf("hover: max altitude error %.3f m, max tilt %.2f°", maxAltErr, maxTilt)
	if !reached {
		t.Fatal("never reached the hover altitude")
	}
	if maxAltErr > 0.25 || maxTilt > 6 {
		t.Fatalf("hover out of bounds: altitude error %.3f m, tilt %.2f°", maxAltErr, maxTilt)
	}
}

func TestLandingEndsLanded(t *testing.T) {
	m := DefaultMission
	m.Pattern = "hover"
	var landedAt = -1
	fly(t, physics.Config{Start: physics.Start{Armed: true}}, m, 16, func(tick int, s physics.State, c *Controller) {
		if tick == 6*400 {
			c.Land()
		}
		if c.Landed() && landedAt < 0 {
			landedAt = tick
			if s.Airborne || s.Crashed {
				t.Fatalf("landed mode at tick %d but truth airborne=%v crashed=%v z=%.2f", tick, s.Airborne, s.Crashed, s.Pos[2])
			}
		}
		if c.Landed() && c.S.Out != [4]float64{} {
			t.Fatalf("landed but outputs %v", c.S.Out)
		}
		if c.LandingOverdue() {
			t.Fatalf("a landing in still air overdue at tick %d (z=%.2f)", tick, s.Pos[2])
		}
	})
	if landedAt < 0 {
		t.Fatal("never landed within 10 s of the landing command")
	}
}

// TestLandingOverdue: a landing whose estimate never reaches the ground
// (the IMU says it holds still at 2 m; no barometer) is given up 6 s of
// control time after its setpoint went below the ground, and not before:
// the count is in steps, which a loaded machine that skips ticks cannot
// shorten.
func TestLandingOverdue(t *testing.T) {
	const rate = 400
	m := DefaultMission
	m.Pattern = "hover"
	c := New(rate, DefaultAirframe, DefaultGains, m, 0)
	still := [3]float64{0, 0, gravity}
	c.Resume(still, 101325)
	c.Land()
	// From the hover setpoint to groundSPM at the descent rate, then the
	// margin; the setpoint's float steps decide the tick at the boundary.
	want := int(((m.AltM-groundSPM)/m.DescentM + landingMarginS) * rate)
	for tick := 1; tick <= want+1; tick++ {
		c.Step(Sensors{Accel: still})
		if c.Landed() {
			t.Fatalf("landed at tick %d on sensors that say %.1f m", tick, m.AltM)
		}
		if got := c.LandingOverdue(); got && tick < want || !got && tick > want {
			t.Fatalf("tick %d of %d: overdue %v", tick, want, got)
		}
	}
}

// TestStateCopyContinues: a controller built from another's State produces
// the same outputs from the same sensors. The hand-over depends on it.
func TestStateCopyContinues(t *testing.T) {
	a := New(400, DefaultAirframe, DefaultGains, DefaultMission, baro.SeaLevelPa)
	in := Sensors{Accel: [3]float64{0.1, -0.2, 9.7}, Gyro: [3]float64{0.01, 0.02, -0.01}, BaroPa: baro.SeaLevelPa - 6, BaroValid: true}
	for range 1000 {
		a.Step(in)
	}
	b := New(400, DefaultAirframe, DefaultGains, DefaultMission, 0)
	b.S = a.S
	for i := range 100 {
		in.BaroValid = i%BaroEvery == 0
		if oa, ob := a.Step(in), b.Step(in); oa != ob {
			t.Fatalf("tick %d: %v vs %v", i, oa, ob)
		}
	}
}

// TestStepIntegratesElapsed: a step integrates the time since the last
// step's sample, as the samples' times say (the ticks a loop skipped
// included), one tick when either time is unknown (a frame from a build
// without them) or out of order, and at most MaxElapsed; the mission moves
// one tick whatever the span.
func TestStepIntegratesElapsed(t *testing.T) {
	const rate = 400
	const tick = int64(time.Second / rate)
	const t0 = 1000 * tick
	cases := []struct {
		name         string
		lastNs, inNs int64
		want         float64 // seconds integrated
	}{
		{"next tick", t0, t0 + tick, 1.0 / rate},
		{"two ticks skipped", t0, t0 + 3*tick, 3.0 / rate},
		{"sample time unknown", t0, 0, 1.0 / rate},
		{"state time unknown", 0, t0 + 3*tick, 1.0 / rate},
		{"sample older than the state", t0, t0 - tick, 1.0 / rate},
		{"a stopped process", t0, t0 + int64(time.Second), MaxElapsed.Seconds()},
	}
	const p = 0.5 // rad/s roll rate
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(rate, DefaultAirframe, DefaultGains, DefaultMission, 0)
			c.S.LastNs = tc.lastNs
			// No accelerometer, so no tilt correction: roll is the gyro's
			// integral alone.
			c.Step(Sensors{Gyro: [3]float64{p, 0, 0}, TimeNs: tc.inNs})
			if got := c.S.Att[0]; math.Abs(got-p*tc.want) > 1e-12 {
				t.Errorf("roll %.6g rad after one step, want %.6g (%.4g s at %.1f rad/s)", got, p*tc.want, tc.want, p)
			}
			if want := DefaultMission.ClimbMS / rate; math.Abs(c.S.AltSP-want) > 1e-12 {
				t.Errorf("take-off setpoint %.6g m, want one tick's climb %.6g m", c.S.AltSP, want)
			}
			if c.S.LastNs != tc.inNs {
				t.Errorf("LastNs %d, want the sample's %d", c.S.LastNs, tc.inNs)
			}
		})
	}
}

// TestSkippingLoopTracksAttitude flies the box pattern in gusts with a loop
// that skips 4 ticks in every 9 (44%, what ci42's flight skipped beside the
// CPU hog): the yaw estimate, the gyro's integral alone, follows the truth
// within 1° from take-off on (0.45° here, 0.34° on every tick), and the
// altitude holds TestTakeoffHoverLand's bound. Counting each step as one
// tick, as the controller once did, the estimate saw 56% of each turn and
// fell 2.4° behind in this flight.
func TestSkippingLoopTracksAttitude(t *testing.T) {
	cfg := physics.Config{
		Start: physics.Start{Armed: true},
		Gusts: physics.Gusts{Force: 1, Torque: 0.01, Tau: time.Second, Seed: 3},
	}
	m := DefaultMission
	m.HoverS = 2
	var yawErr, altErr float64
	flySkipping(t, cfg, m, 20, func(tick int) bool { return tick%9 < 4 }, func(tick int, s physics.State, c *Controller) {
		if c.S.Mode == ModeTakeoff {
			return
		}
		yawErr = math.Max(yawErr, math.Abs(wrap(c.S.Att[2]-s.Yaw))*180/math.Pi)
		altErr = math.Max(altErr, math.Abs(s.Pos[2]-m.AltM))
	})
	t.Logf("skipping 44%% of ticks: yaw estimate off by %.2f° at most, altitude by %.3f m", yawErr, altErr)
	if yawErr > 1 || altErr > 0.25 {
		t.Fatalf("yaw estimate off by %.2f° (want < 1°), altitude by %.3f m (want < 0.25 m)", yawErr, altErr)
	}
}
