package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"time"

	"github.com/skyswap/skyswap/hw/baro"
	"github.com/skyswap/skyswap/hw/bus"
	"github.com/skyswap/skyswap/hw/imu"
	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/motors"
	"github.com/skyswap/skyswap/images/flight/control"
)

// ErrFenced is returned by Run when the motor controller refused this
// instance's write because a newer lease holder has taken the hardware.
var ErrFenced = errors.New("flight: fenced out by a newer lease holder")

// hardware is the flight app's view of the drone.
type hardware struct {
	bus    lease.Bus
	motors *motors.Dev // nil when observing
	imu    *imu.Dev
	baro   *baro.Dev
	p0     float64 // take-off pressure, Pa
}

func openHardware(ctx context.Context, cfg Config, log *slog.Logger) (*hardware, error) {
	b, err := bus.Open(ctx, bus.Config{Spec: cfg.Bus, Name: cfg.Instance, LeaseFile: cfg.LeaseFile})
	if err != nil {
		return nil, err
	}
	h := &hardware{bus: b}
	mo := &motors.Opts{RateHz: cfg.RateHz}
	if cfg.RateHz > 490 {
		// Standard ESC PWM tops out near 490 Hz; above that the loop
		// still runs fast but the ESC signal stays at 400 Hz.
		mo.RateHz = 400
	}
	switch cfg.Start {
	case StartCold:
		b.SetEpoch(cfg.Epoch)
		log.Info("cold start: initialising chips and arming ESCs")
		if h.imu, err = imu.Init(ctx, b, nil); err == nil {
			if h.baro, err = baro.Init(ctx, b, nil); err == nil {
				h.motors, err = motors.Init(ctx, b, mo)
			}
		}
	case StartAttach:
		log.Info("attaching to running chips, read-only")
		if h.imu, err = imu.Attach(b, nil); err == nil {
			h.baro, err = baro.Attach(b, nil)
		}
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	// The take-off pressure: average a few samples.
	var sum float64
	const n = 8
	for range n {
		p, _, err := h.baro.Read()
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("flight: reference pressure: %w", err)
		}
		sum += p
		time.Sleep(2 * time.Millisecond)
	}
	h.p0 = sum / n
	return h, nil
}

// Run flies until ctx is done, then lands and returns nil once the motors
// idle on the ground. It returns an error if the hardware cannot be opened
// or this instance is fenced out.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	log = log.With("instance", cfg.Instance, "version", Version)
	// Opening and arming must finish even if a stop is requested meanwhile:
	// a half-initialised chip is worse than a landing.
	h, err := openHardware(context.WithoutCancel(ctx), cfg, log)
	if err != nil {
		return err
	}
	defer h.bus.Close()
	l := &loop{cfg: cfg, log: log, hw: h,
		ctl: control.New(cfg.RateHz, control.DefaultAirframe, control.DefaultGains, cfg.Mission())}
	return l.run(ctx)
}

// loop is the control loop's state.
type loop struct {
	cfg Config
	log *slog.Logger
	hw  *hardware
	ctl *control.Controller

	missed   uint64 // ticks skipped because a tick overran
	sensorEr uint64 // failed sensor reads
	maxBusy  time.Duration
}

func (l *loop) run(ctx context.Context) error {
	// One OS thread sleeps on the absolute grid: no goroutine migration
	// between the wake-up and the write.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if l.cfg.RTPriority > 0 {
		if err := mono.RealTime(l.cfg.RTPriority); err != nil {
			l.log.Warn("control loop runs without real-time priority", "err", err)
		}
	}

	period := int64(math.Round(1e9 / l.cfg.RateHz))
	next := (mono.Now()/period + 1) * period
	logEvery := uint64(math.Max(1, l.cfg.LogEvery*l.cfg.RateHz))
	observe := l.hw.motors == nil
	landStart := time.Time{}
	l.log.Info("control loop running", "rate_hz", l.cfg.RateHz, "start", l.cfg.Start,
		"epoch", l.cfg.Epoch, "first_tick", next/period)

	var in control.Sensors
	for n := uint64(0); ; n++ {
		mono.SleepUntil(next)
		start := mono.Now()
		if ctx.Err() != nil && landStart.IsZero() {
			landStart = time.Now()
			if observe {
				l.log.Info("stop requested; observer exits")
				return nil
			}
			l.log.Info("stop requested: landing before exit", "alt_m", l.ctl.S.Alt)
			l.ctl.Land()
		}

		s, err := l.hw.imu.Read()
		if err != nil {
			// Fly on the last sample: one lost read is less harmful
			// than a skipped output.
			l.sensorEr++
			if l.sensorEr%100 == 1 {
				l.log.Warn("imu read failed", "err", err, "failures", l.sensorEr)
			}
		} else {
			in.Accel, in.Gyro = s.Accel, s.Gyro
		}
		in.BaroValid = n%control.BaroEvery == 0
		if in.BaroValid {
			if p, _, err := l.hw.baro.Read(); err == nil {
				in.BaroAltM = baro.Altitude(p, l.hw.p0)
			} else {
				in.BaroValid = false
				l.sensorEr++
			}
		}
		out := l.ctl.Step(in)

		if !observe {
			if err := l.hw.motors.Set(out); err != nil {
				if errors.Is(err, lease.ErrStale) {
					l.log.Error("motor write refused: a newer instance holds the lease", "err", err)
					return fmt.Errorf("%w: %v", ErrFenced, err)
				}
				l.log.Warn("motor write failed", "err", err)
			}
			if l.ctl.Landed() {
				l.log.Info("landed; motors idle", "tick", l.ctl.S.Tick)
				return nil
			}
			if !landStart.IsZero() && time.Since(landStart) > l.landingDeadline() {
				l.log.Error("landing did not finish in time; idling motors", "alt_m", l.ctl.S.Alt)
				return l.hw.motors.Stop()
			}
		}

		busy := time.Duration(mono.Now() - start)
		l.maxBusy = max(l.maxBusy, busy)
		if n%logEvery == 0 {
			st := l.ctl.S
			l.log.Info("status", "tick", st.Tick, "mode", st.Mode.String(),
				"alt_m", round(st.Alt, 3), "vz", round(st.VZ, 3),
				"roll_deg", round(st.Att[0]*180/math.Pi, 2), "pitch_deg", round(st.Att[1]*180/math.Pi, 2),
				"yaw_deg", round(st.Att[2]*180/math.Pi, 1), "out", roundAll(out),
				"missed", l.missed, "sensor_errors", l.sensorEr, "max_busy_us", l.maxBusy.Microseconds())
			l.maxBusy = 0
		}

		next += period
		if now := mono.Now(); now >= next {
			// Overran: skip to the next grid tick rather than bunch up.
			skip := (now-next)/period + 1
			l.missed += uint64(skip)
			next += skip * period
		}
	}
}

// landingDeadline bounds a landing: the descent at the mission's rate
// plus a margin.
func (l *loop) landingDeadline() time.Duration {
	return time.Duration((math.Max(l.ctl.S.Alt, 0)/control.DefaultMission.DescentM + 6) * float64(time.Second))
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func roundAll(v [4]float64) [4]float64 {
	for i := range v {
		v[i] = round(v[i], 3)
	}
	return v
}
