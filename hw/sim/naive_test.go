package sim_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/devices/v3/pca9685"

	"github.com/skyswap/skyswap/hw/imu"
	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/motors"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/physics"
)

// hoverAlt is where the owner holds the drone, m.
const hoverAlt = 3.0

// hover is a virtual drone held at hoverAlt by an "owner" writing the
// motors every 2.5 ms, as the flight loop would, from an altitude P-D on
// the simulator's ground truth (cheating on truth is fine here: the owner
// stands for any competent flight app; what is under test is what a second
// process does to it).
type hover struct {
	d           *sim.Drone
	ownerWrites atomic.Int64
	ownerErrs   atomic.Int64
	lastErr     atomic.Value // string
}

// startHover brings a drone into hover at hoverAlt without the flight app:
// the physics starts there with the ESCs armed and the motors at hover
// speed, and the PCA9685 is cold-configured (motors.Init, then the hover
// throttle at once) and the IMU initialised before the physics runs, so no
// altitude is lost while the drivers start.
func startHover(t *testing.T) *hover {
	t.Helper()
	p := physics.DefaultParams()
	h := p.HoverSpeed()
	d := sim.New(sim.Config{
		RefAltM: hoverAlt,
		Physics: physics.Config{Start: physics.Start{
			Pos:    [3]float64{0, 0, hoverAlt},
			Armed:  true,
			Motors: [4]float64{h, h, h, h},
		}},
	})
	ctx := testCtx(t, 10*time.Second)
	owner := d.Bus("owner")
	owner.SetEpoch(1)
	// The ESCs start armed: no need to hold the arming pulse.
	m, err := motors.Init(ctx, owner, &motors.Opts{ArmTime: time.Millisecond})
	if err != nil {
		t.Fatalf("owner motors.Init: %v", err)
	}
	// Throttle maps linearly to speed and thrust = MaxThrust·speed², so the
	// hover throttle is the hover speed.
	if err := m.Set([motors.N]float64{h, h, h, h}); err != nil {
		t.Fatal(err)
	}
	if _, err := imu.Init(ctx, owner, nil); err != nil {
		t.Fatalf("owner imu.Init: %v", err)
	}
	run(t, d)

	hv := &hover{d: d}
	octx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		const kp, kd = 6.0, 4.0 // 1/s², 1/s: ζ ≈ 0.8
		tick := time.NewTicker(2500 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-octx.Done():
				return
			case <-tick.C:
			}
			tr := d.Truth()
			a := kp*(hoverAlt-tr.Pos[2]) - kd*tr.Vel[2]
			thr := min(math.Sqrt(max(0, p.Mass*(p.Gravity+a)/(4*p.MaxThrust))), 1)
			if err := m.Set([motors.N]float64{thr, thr, thr, thr}); err != nil {
				hv.ownerErrs.Add(1)
				hv.lastErr.Store(err.Error())
			}
			hv.ownerWrites.Add(1)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return hv
}

// flight summarises the ground truth sampled over a window.
type flight struct {
	start, end int64   // mono ns
	maxDev     float64 // largest |z − hoverAlt|, m
	minZ, maxZ float64
	lostAt     int64 // first sample more than 0.5 m off or crashed, or 0
	crashAt    int64 // first crashed sample, or 0
	disarmAt   int64 // first sample with an ESC disarmed, or 0
	groundAt   int64 // first sample on the ground, or 0
	last       sim.Truth
}

// watch samples the truth every 2 ms for dur, or until stop says so.
func watch(d *sim.Drone, dur time.Duration, stop func(f *flight) bool) flight {
	f := flight{start: mono.Now(), minZ: math.Inf(1), maxZ: math.Inf(-1)}
	deadline := f.start + int64(dur)
	for {
		tr := d.Truth()
		z := tr.Pos[2]
		f.maxDev = max(f.maxDev, math.Abs(z-hoverAlt))
		f.minZ, f.maxZ = min(f.minZ, z), max(f.maxZ, z)
		if tr.Crashed && f.crashAt == 0 {
			f.crashAt = tr.T
		}
		if tr.Armed != [4]bool{true, true, true, true} && f.disarmAt == 0 {
			f.disarmAt = tr.T
		}
		if z == 0 && f.groundAt == 0 {
			f.groundAt = tr.T
		}
		if (tr.Crashed || math.Abs(z-hoverAlt) > 0.5) && f.lostAt == 0 {
			f.lostAt = tr.T
		}
		f.last, f.end = tr, tr.T
		if tr.T >= deadline || (stop != nil && stop(&f)) {
			return f
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ms(ns int64) string { return fmt.Sprintf("%.0f ms", float64(ns)/1e6) }

// holds checks that the owner alone keeps the drone at hoverAlt for a
// second: the baseline that makes the intruder's effect attributable.
func (hv *hover) holds(t *testing.T) {
	t.Helper()
	f := watch(hv.d, time.Second, nil)
	if f.last.Crashed || f.maxDev > 0.1 {
		t.Fatalf("the owner alone does not hold %v m: z in [%.3f, %.3f], crashed %v", hoverAlt, f.minZ, f.maxZ, f.last.Crashed)
	}
	if n := hv.ownerErrs.Load(); n > 0 {
		t.Fatalf("owner: %d failed writes, last %v", n, hv.lastErr.Load())
	}
	t.Logf("baseline: owner holds z in [%.4f, %.4f] m for 1 s (%d writes so far)", f.minZ, f.maxZ, hv.ownerWrites.Load())
}

// TestNaiveInitDropsTheDrone is the project's faithfulness proof for the
// hand-over problem. With one owner flying the drone, a second process
// that opens the motor controller the ordinary way — periph's
// pca9685.NewI2C — with a perfectly valid lease (the same epoch, so the
// fence does not stop it) brings the drone down. NewI2C sets every output to
// 0% (no pulses), then turns auto-increment off for 100 ms, so each of the
// owner's one-transaction Sets lands entirely in LED0_ON_L: channel 0 ends
// up with a near-100% duty (full throttle) while channels 1-3 stay without
// pulses, and their ESCs disarm after 100 ms of signal loss and ignore the
// owner from then on (the hover pulse is too wide to re-arm them). The
// lopsided thrust flips the drone. The contrast run has the second process
// do what the project's drivers do instead (motors.Attach, imu.Attach, 400
// IMU reads at 400 Hz): the drone holds within 0.3 m and the referee logs
// not a single write from it.
func TestNaiveInitDropsTheDrone(t *testing.T) {
	cases := []struct {
		name     string
		intruder string
		// act is the second process's work on its own bus.
		act func(t *testing.T, bus lease.Bus) error
		// lost: the drone must leave the hold (else: must keep it).
		lost bool
	}{
		{
			name:     "periph NewI2C",
			intruder: "naive",
			act: func(t *testing.T, bus lease.Bus) error {
				_, err := pca9685.NewI2C(bus, pca9685.I2CAddr)
				return err
			},
			lost: true,
		},
		{
			name:     "motors.Attach and imu.Attach",
			intruder: "attacher",
			act: func(t *testing.T, bus lease.Bus) error {
				m, err := motors.Attach(bus, nil)
				if err != nil {
					return err
				}
				thr, err := m.Read()
				if err != nil {
					return err
				}
				dev, err := imu.Attach(bus, nil)
				if err != nil {
					return err
				}
				tick := time.NewTicker(2500 * time.Microsecond)
				defer tick.Stop()
				for i := range 400 {
					s, err := dev.Read()
					if err != nil {
						return err
					}
					// In hover the specific force is 1 g up.
					if math.Abs(s.Accel[2]-9.81) > 1 {
						return fmt.Errorf("read %d: accel %.3v in hover, want z ≈ 9.81", i, s.Accel)
					}
					<-tick.C
				}
				t.Logf("attacher read throttles %.3f and 400 IMU samples", thr)
				return nil
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hv := startHover(t)
			d := hv.d
			hv.holds(t)

			mark := mono.Now()
			done := make(chan error, 1)
			var doneAt atomic.Int64
			go func() {
				bus := d.Bus(tc.intruder)
				bus.SetEpoch(1) // the owner's own epoch: the fence lets it through
				err := tc.act(t, bus)
				doneAt.Store(mono.Now())
				done <- err
			}()

			var f flight
			if tc.lost {
				// Stop once the wreck lies on the ground.
				f = watch(d, 2500*time.Millisecond, func(f *flight) bool {
					return f.last.Crashed && f.last.Pos[2] == 0
				})
			} else {
				f = watch(d, 5*time.Second, func(f *flight) bool {
					at := doneAt.Load()
					return at != 0 && f.end > at+int64(200*time.Millisecond)
				})
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s did not finish", tc.intruder)
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.intruder, err)
			}
			end := mono.Now()
			rep := d.Report(mark, end)
			ws := d.Writes(mark, end)
			var intruderWrites int
			for _, w := range ws {
				if w.Writer == tc.intruder {
					intruderWrites++
				}
			}
			t.Logf("%s took %s; z in [%.3f, %.3f] m, max deviation %.3f m; final z %.3f, crashed %v, ESCs armed %v",
				tc.intruder, ms(doneAt.Load()-mark), f.minZ, f.maxZ, f.maxDev, f.last.Pos[2], f.last.Crashed, f.last.Armed)
			t.Logf("referee: %d updates by %v, %d by %s, max gap %.1f ms, alt err max %.3f m, att err max %.1f°, crashed %v",
				rep.Updates, rep.Writers, intruderWrites, tc.intruder, rep.MaxGapMs, rep.AltErrMaxM, rep.AttErrMaxDeg, rep.Crashed)
			if n := hv.ownerErrs.Load(); n > 0 {
				t.Errorf("owner: %d failed writes, last %v (the intruder's writes are legal: nothing should refuse the owner)", n, hv.lastErr.Load())
			}

			if tc.lost {
				if f.lostAt == 0 || (rep.AltErrMaxM <= 0.5 && !rep.Crashed) {
					t.Fatalf("the drone held after %s: max deviation %.3f m, referee alt err %.3f m, crashed %v", tc.intruder, f.maxDev, rep.AltErrMaxM, rep.Crashed)
				}
				if lost := time.Duration(f.lostAt - mark); lost > 2*time.Second {
					t.Fatalf("the drone left the hold only %v after NewI2C began, want within 2 s", lost)
				}
				if !slices.Contains(rep.Writers, tc.intruder) {
					t.Fatalf("referee logged no motor update by %s: %v", tc.intruder, rep.Writers)
				}
				t.Logf("drone lost %s after NewI2C began (|Δz| > 0.5 m or crash); altitude lost %.3f m",
					ms(f.lostAt-mark), hoverAlt-f.minZ)
				if f.disarmAt != 0 {
					t.Logf("first ESC disarmed %s after NewI2C began", ms(f.disarmAt-mark))
				}
				if rep.Crashed {
					t.Logf("referee: crashed %s after NewI2C began", ms(rep.CrashedAt-mark))
				}
				if f.groundAt != 0 {
					t.Logf("on the ground %s after NewI2C began", ms(f.groundAt-mark))
				}
				return
			}
			if f.last.Crashed || f.maxDev > 0.3 || rep.Crashed || rep.AltErrMaxM > 0.3 {
				t.Fatalf("the drone did not hold while %s attached: max deviation %.3f m (referee %.3f m), crashed %v", tc.intruder, f.maxDev, rep.AltErrMaxM, rep.Crashed)
			}
			if intruderWrites != 0 {
				t.Fatalf("referee logged %d writes by %s, want none", intruderWrites, tc.intruder)
			}
			if len(rep.Writers) != 1 || rep.Writers[0] != "owner" || rep.Updates < 50 {
				t.Fatalf("motor updates in the window: %d by %v, want the owner's alone", rep.Updates, rep.Writers)
			}
		})
	}
}
