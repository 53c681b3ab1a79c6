package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"periph.io/x/conn/v3/spi"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/hw/baro"
	"github.com/skyswap/skyswap/hw/bus"
	"github.com/skyswap/skyswap/hw/camera"
	"github.com/skyswap/skyswap/hw/imu"
	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/motors"
	"github.com/skyswap/skyswap/images/flight/control"

	// Before this package's own init (a fault may exit there): everything
	// the app prints goes out on stdout, one stream in one order.
	_ "github.com/skyswap/skyswap/images/flight/onestream"
)

// ErrFenced is returned by Run when the motor controller refused this
// instance's write because a newer lease holder has taken the hardware.
var ErrFenced = errors.New("flight: fenced out by a newer lease holder")

// hardware is the flight app's view of the drone.
type hardware struct {
	bus    *bus.Buses
	motors *motors.Dev // nil when only observing
	imu    *imu.Dev
	baro   *baro.Dev
	p0     float64 // take-off pressure, Pa (cold start only)
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
		b.Actuators.SetEpoch(cfg.Epoch)
		log.Info("cold start: initialising chips and arming ESCs")
		if h.imu, err = imu.Init(ctx, b.Sensors, nil); err == nil {
			if h.baro, err = baro.Init(ctx, b.Sensors, nil); err == nil {
				h.motors, err = motors.Init(ctx, b.Actuators, mo)
			}
		}
	default:
		log.Info("attaching to running chips; writing nothing", "start", cfg.Start)
		if h.imu, err = imu.Attach(b.Sensors, nil); err == nil {
			if h.baro, err = baro.Attach(b.Sensors, nil); err == nil && cfg.Start != StartAttach {
				h.motors, err = motors.Attach(b.Actuators, mo)
			}
		}
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	if cfg.Start != StartCold {
		return h, nil
	}
	// The reference pressure, averaged on the ground before take-off. In
	// the air it comes with the owner's state (or, for resume, is chosen so
	// that here is the mission altitude).
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

// Run flies until ctx is done, then (as the owner) lands and returns nil
// once the motors idle on the ground. A candidate or standby returns at
// once, and a retired one when told. It returns an error if the hardware
// cannot be opened or this instance is fenced out with no hand-over.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	log = log.With("instance", cfg.Instance, "version", Version)
	// Opening and arming must finish even if a stop is requested meanwhile:
	// a half-initialised chip is worse than a landing.
	h, err := openHardware(context.WithoutCancel(ctx), cfg, log)
	if err != nil {
		return err
	}
	defer h.bus.Close()
	ctl := control.New(cfg.RateHz, control.DefaultAirframe, control.DefaultGains, cfg.Mission(), h.p0)
	l := &loop{cfg: cfg, log: log, hw: h, ctl: ctl, period: int64(math.Round(1e9 / cfg.RateHz)),
		recent: &handoff.Recent[control.Sensors]{}, setPriority: mono.Priority}
	if cfg.NATS != "" {
		nc, p, err := l.join(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		defer p.Close()
		l.p, l.recent = p, handoff.NewRecent[control.Sensors](p.CatchUpTicks())
		if cfg.Camera {
			subject := handoff.SubjectsFor(cfg.App).Camera()
			cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
			cs := &camStream{driving: &l.driving, log: log.With("part", "camera"),
				open:    func() (*camera.Camera, spi.PortCloser, error) { return openCamera(cctx, cfg, h.bus.Sensors, log) },
				init:    func(p spi.Port) (*camera.Camera, error) { return camera.InitOpts(cctx, p, h.bus.Sensors, nil) },
				meta:    frameMeta{Instance: cfg.Instance, Version: Version},
				publish: func(b []byte) error { return nc.Publish(subject, b) }}
			l.cam = cs
			done := make(chan struct{})
			go func() { defer close(done); cs.run(cctx) }()
			defer func() { stop(); <-done }()
		}
	}
	// Collect once before the loop: a process's first collection stopped
	// it for 29 ms beside the CPU hog (GODEBUG=gctrace=1), where later ones
	// stop it for under 2 ms, and it came 0.6 s into a candidate's life,
	// after it had taken over. Now a candidate takes it driving nothing.
	runtime.GC()
	// The other threads go real-time only now that the start-up's work is
	// done: where a cgroup budgets real-time time, a candidate that spent
	// it starting up took over throttled on one CPU (docs/ARCHITECTURE.md).
	if prio := cfg.helperPriority(); prio > 0 {
		if err := mono.Helpers(prio); err != nil {
			log.Warn("the app's other threads run under ordinary scheduling", "err", err)
		}
	}
	return l.run(ctx)
}

// join connects to the on-board NATS and joins the hand-over.
func (l *loop) join(ctx context.Context) (*nats.Conn, *handoff.Participant, error) {
	// NoEcho: the owner's own frames (a thousand a second at 1000 Hz)
	// would come back only to be decoded and dropped, all garbage.
	nc, err := nats.Connect(l.cfg.NATS, nats.Name(l.cfg.Instance), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Timeout(5*time.Second), nats.NoEcho())
	if err != nil {
		return nil, nil, fmt.Errorf("flight: FLIGHT_NATS=%s: %w", l.cfg.NATS, err)
	}
	role, epoch := handoff.RoleOwner, l.cfg.Epoch
	if l.cfg.Start == StartCandidate || l.cfg.Start == StartAttach {
		role, epoch = handoff.RoleCandidate, 0
	}
	p, err := handoff.NewParticipant(ctx, nc, model{l.cfg}, handoff.ParticipantConfig{
		App: l.cfg.App, Instance: l.cfg.Instance, Version: Version, Schema: Schema,
		Accepts: strings.Split(Accepts, ","), Role: role, Epoch: epoch,
		Period: time.Duration(l.period), Lease: l.hw.bus.Actuators, Log: l.log,
	})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, p, nil
}

// model replays the control law for the participant's shadow check.
type model struct{ cfg Config }

func (m model) Replay(state, sample json.RawMessage) ([]float64, error) {
	c := control.New(m.cfg.RateHz, control.DefaultAirframe, control.DefaultGains, m.cfg.Mission(), 0)
	if err := json.Unmarshal(state, &c.S); err != nil {
		return nil, fmt.Errorf("flight: state: %w", err)
	}
	var in control.Sensors
	if err := json.Unmarshal(sample, &in); err != nil {
		return nil, fmt.Errorf("flight: sample: %w", err)
	}
	out := c.Step(in)
	out = faults.replay(out)
	return out[:], nil
}

// loop is the control loop's state.
type loop struct {
	cfg    Config
	log    *slog.Logger
	hw     *hardware
	ctl    *control.Controller
	p      *handoff.Participant // nil without FLIGHT_NATS
	recent *handoff.Recent[control.Sensors]
	period int64

	driving atomic.Bool // this instance drives the motors this tick (the camera streams while it does)
	cam     *camStream  // nil without the camera

	prio        int             // the control thread's real-time priority; 0 = ordinary scheduling
	setPriority func(int) error // mono.Priority; a test's fake

	missed   uint64 // ticks skipped because a tick overran
	sensorEr uint64 // failed sensor reads
	maxBusy  time.Duration

	// The control thread's own state between ticks.
	in      control.Sensors // the last sample (a failed read keeps it)
	out     [4]float64      // the outputs the frame carries (a local's slice would escape)
	epoch   uint64          // the epoch the bus writes with
	resumed bool            // a resume start has taken its reference
	landing bool            // a stop request began the landing
	// The frame's state and sample, encoded in buffers reused each tick.
	stateJSON, sampleJSON handoff.JSONBuffer
}

func (l *loop) run(ctx context.Context) error {
	// One OS thread sleeps on the absolute grid: no goroutine migration
	// between the wake-up and the write.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if l.cfg.RTPriority > 0 {
		prio := l.cfg.priority(false) // the first tick raises an owner's
		if err := mono.RealTime(prio); err != nil {
			l.log.Warn("control loop runs without real-time priority", "err", err)
		} else {
			l.prio = prio
		}
	}
	next := (mono.Now()/l.period + 1) * l.period
	logEvery := uint64(math.Max(1, l.cfg.LogEvery*l.cfg.RateHz))
	l.log.Info("control loop running", "rate_hz", l.cfg.RateHz, "start", l.cfg.Start,
		"epoch", l.cfg.Epoch, "first_tick", next/l.period, "handoff", l.p != nil)
	for n := uint64(0); ; n++ {
		mono.SleepUntil(next)
		tick, start := next/l.period, mono.Now()
		out, done, err := l.tick(ctx, tick)
		if done {
			return err
		}
		l.maxBusy = max(l.maxBusy, time.Duration(mono.Now()-start))
		if n%logEvery == 0 {
			l.status(tick, out)
		}
		next += l.period
		if now := mono.Now(); now >= next {
			// Overran: skip to the next grid tick rather than bunch up.
			skip := (now-next)/l.period + 1
			l.missed += uint64(skip)
			next += skip * l.period
		}
	}
}

// tick is one control tick: the hand-over's decision, then the sensors,
// the control law and, when this instance drives, the motors. done ends
// the loop, with err.
func (l *loop) tick(ctx context.Context, tick int64) (out [4]float64, done bool, err error) {
	d := handoff.Decision{Write: l.p == nil && l.hw.motors != nil, Epoch: l.cfg.Epoch}
	if l.p != nil {
		if d = l.p.Tick(tick); d.Retire {
			l.log.Info("retired: exiting without touching the actuators")
			return out, true, nil
		}
	}
	driving := d.Write && l.hw.motors != nil
	if was := l.driving.Swap(driving); was && !d.Write && l.cam != nil {
		l.cam.stopReading() // the camera hands over with the motors
	}
	l.reprioritise(driving)
	if l.stopRequested(ctx, d.Write) {
		return out, true, nil
	}
	if d.Hydrate != nil {
		l.hydrate(d, tick)
	}
	in := l.sense(tick)
	out = l.ctl.Step(in)
	if d.Write && l.hw.motors != nil {
		done, err = l.drive(tick, d.Epoch, out)
	}
	return out, done, err
}

// reprioritise moves the control thread, when it is real-time, to its
// priority for driving or not (Config.priority), if that changed: raised
// at a take-over before the first write, lowered on handing over.
func (l *loop) reprioritise(driving bool) {
	want := l.cfg.priority(driving)
	if l.prio == 0 || want == l.prio {
		return
	}
	if err := l.setPriority(want); err != nil {
		l.log.Warn("control loop keeps its real-time priority", "priority", l.prio, "want", want, "err", err)
		return
	}
	l.prio = want
}

// stopRequested handles SIGTERM (ctx ended): an instance not driving, or
// one told to exit (FLIGHT_ON_TERM=exit), leaves at once; the owner starts
// landing and keeps flying until it lands.
func (l *loop) stopRequested(ctx context.Context, writing bool) bool {
	if ctx.Err() == nil || l.landing {
		return false
	}
	if !writing || l.cfg.OnTerm == "exit" {
		l.log.Info("stop requested; not driving the motors, exiting", "writing", writing)
		return true
	}
	l.landing = true
	l.log.Info("stop requested: landing before exit", "alt_m", l.ctl.S.Alt)
	l.ctl.Land()
	return false
}

// sense reads this tick's sensors. A failed read flies on the last sample:
// one lost read is less harmful than a skipped output.
func (l *loop) sense(tick int64) control.Sensors {
	in := &l.in
	in.TimeNs = tick * l.period // the step integrates from the last sample's
	if s, err := l.hw.imu.Read(); err != nil {
		l.sensorEr++
		if l.sensorEr%100 == 1 {
			l.log.Warn("imu read failed", "err", err, "failures", l.sensorEr)
		}
	} else {
		in.Accel, in.Gyro = s.Accel, s.Gyro
	}
	needResume := l.cfg.Start == StartResume && !l.resumed
	in.BaroValid = tick%control.BaroEvery == 0 || needResume
	if in.BaroValid {
		if p, _, err := l.hw.baro.Read(); err == nil {
			in.BaroPa = p
		} else {
			in.BaroValid = false
			l.sensorEr++
		}
	}
	if needResume && in.BaroValid {
		l.ctl.Resume(in.Accel, in.BaroPa)
		l.resumed = true
	}
	l.recent.Put(tick, *in)
	return *in
}

// drive writes out to the motors at epoch and publishes the tick's frame.
// done ends the loop: landed, fenced out without a hand-over, or a landing
// that took too long.
func (l *loop) drive(tick int64, epoch uint64, out [4]float64) (done bool, err error) {
	if epoch != l.epoch {
		l.hw.bus.Actuators.SetEpoch(epoch)
		l.epoch = epoch
	}
	written := faults.drive(out, l.cfg.Start)
	switch err := l.hw.motors.Set(written); {
	case err == nil:
		if l.p != nil {
			l.publish(tick, written)
		}
	case errors.Is(err, lease.ErrHeld) && l.p != nil:
		l.p.Held()
	case !errors.Is(err, lease.ErrStale):
		l.log.Warn("motor write failed", "err", err)
	case l.p == nil:
		l.log.Error("motor write refused: a newer instance holds the lease", "err", err)
		return true, fmt.Errorf("%w: %v", ErrFenced, err)
	default:
		l.p.Fenced()
	}
	if l.ctl.Landed() {
		l.log.Info("landed; motors idle", "tick", l.ctl.S.Tick)
		return true, nil
	}
	if l.ctl.LandingOverdue() {
		l.log.Error("landing did not finish in time; idling motors", "alt_m", l.ctl.S.Alt)
		return true, l.hw.motors.Stop()
	}
	return false, nil
}

// hydrate loads the owner's state and steps it over the ticks its frame
// did not cover, on this loop's own samples of them.
func (l *loop) hydrate(d handoff.Decision, tick int64) {
	if err := json.Unmarshal(d.Hydrate, &l.ctl.S); err != nil {
		l.log.Warn("cannot load the owner's state", "err", err)
		return
	}
	l.recent.CatchUp(d, tick, func(in control.Sensors) { l.ctl.Step(in) })
}

// publish sends the tick's frame (the participant drops it unless owner).
// It allocates nothing: at 1000 Hz, json.Marshal here had the collector
// running every 0.7 s, each run a chance to hold the loop up.
func (l *loop) publish(tick int64, out [4]float64) {
	state, err := l.stateJSON.Encode(&l.ctl.S)
	if err != nil {
		return
	}
	sample, _ := l.sampleJSON.Encode(&l.in) // this tick's, as sense left it
	st := &l.ctl.S
	h := handoff.Health{RollDeg: st.Att[0] * 180 / math.Pi, PitchDeg: st.Att[1] * 180 / math.Pi, AltM: st.Alt}
	l.out = out
	if err := l.p.Publish(tick, state, sample, l.out[:], h); err != nil {
		l.log.Warn("publish frame", "err", err)
	}
}

func (l *loop) status(tick int64, out [4]float64) {
	st := l.ctl.S
	role := "owner"
	if l.p != nil {
		role = string(l.p.Role())
	} else if l.hw.motors == nil {
		role = "observer"
	}
	l.log.Info("status", "tick", tick, "role", role, "mode", st.Mode.String(),
		"alt_m", round(st.Alt, 3), "vz", round(st.VZ, 3),
		"roll_deg", round(st.Att[0]*180/math.Pi, 2), "pitch_deg", round(st.Att[1]*180/math.Pi, 2),
		"yaw_deg", round(st.Att[2]*180/math.Pi, 1), "out", roundAll(out),
		"missed", l.missed, "sensor_errors", l.sensorEr, "max_busy_us", l.maxBusy.Microseconds())
	l.maxBusy = 0
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
