package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/chips"
	"github.com/skyswap/skyswap/hw/sim/physics"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/hw/sim/scene"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// Config configures the virtual drone. The zero value is the reference quad
// on the ground in calm air with exact sensors, judged for a 400 Hz loop
// holding 2 m.
type Config struct {
	Physics physics.Config // zero = default airframe, calm air, exact sensors
	TickHz  float64        // the flight loop's rate, for the referee; 0 = 400
	RefAltM float64        // altitude the referee measures error against; 0 = 2
	// Step is the physics period in real time; 0 = 1 ms.
	Step time.Duration
	// RTPriority, if positive, runs the physics and bus threads under
	// SCHED_FIFO at this priority when permitted (root or CAP_SYS_NICE), so
	// that the virtual hardware keeps hardware timing on a busy machine.
	RTPriority int
	// LogCap bounds the referee's write log (and its samples); 0 = 1<<19,
	// about 20 minutes of a 400 Hz loop.
	LogCap int
	// NoCamera leaves the thermal camera out; the zero Config has one: a
	// Lepton 2.5 (CCI at AddrLepton, video on SPI chip select SPICamera)
	// that sees the scene from the truth (package scene).
	NoCamera bool
	Log      *slog.Logger // nil = discard
}

// Drone is a running virtual drone.
type Drone struct {
	cfg  Config
	log  *slog.Logger
	pca  *chips.PCA9685
	imu  *chips.MPU9250
	baro *chips.BMP280
	quad *physics.Quad
	ref  *referee.Referee

	cam     *chips.Lepton // nil without a camera
	camRead camReads
	scene   *scene.Scene
	poses   *history[pose]         // recent truth, one per physics step (0.5 s), for rendering a frame from its start time
	renders *history[CameraRender] // the attitude each of the last images was rendered from

	// pcaMu orders fence, chip write and referee record as one step, so
	// the log's order is the chip's.
	pcaMu sync.Mutex
	fence lease.Memory

	i2c *busFaults // injected I2C error bursts

	nextLocal  atomic.Uint64
	hoverSince atomic.Int64 // first time within 0.1 m of RefAltM, or 0
	server     *simbus.Server
}

// Bus addresses.
const (
	AddrPCA9685 = chips.PCA9685Addr
	AddrMPU9250 = chips.MPU9250Addr
	AddrBMP280  = chips.BMP280Addr
	AddrLepton  = chips.LeptonAddr
)

// SPICamera is the camera's SPI chip select.
const SPICamera uint8 = 0

// SPIByteTime is how long one byte takes on the simulated SPI bus: its
// clock runs at 20 MHz, the Lepton's maximum and what periph's lepton asks
// for, so a drone-sim SPI transaction lasts as long as on the Pi.
const SPIByteTime = 400 * time.Nanosecond

// New builds a virtual drone. Call Run to start its physics.
func New(cfg Config) *Drone {
	if cfg.TickHz == 0 {
		cfg.TickHz = 400
	}
	if cfg.RefAltM == 0 {
		cfg.RefAltM = 2
	}
	if cfg.Step == 0 {
		cfg.Step = time.Millisecond
	}
	if cfg.LogCap == 0 {
		cfg.LogCap = 1 << 19
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	d := &Drone{
		cfg:  cfg,
		log:  cfg.Log,
		pca:  chips.NewPCA9685(mono.Now),
		imu:  chips.NewMPU9250(mono.Now),
		baro: chips.NewBMP280(mono.Now),
		quad: physics.New(cfg.Physics),
		ref:  referee.New(referee.Config{TickHz: cfg.TickHz, LogCap: cfg.LogCap, SampleCap: cfg.LogCap}),

		poses:   newHistory[pose](512),
		renders: newHistory[CameraRender](256),
		i2c:     newBusFaults(mono.Now),
	}
	if !cfg.NoCamera {
		st := cfg.Physics.Start
		d.scene = scene.New(scene.Config{
			TakeOff: [2]float64{st.Pos[0], st.Pos[1]},
			Heading: st.Yaw,
			Seed:    uint64(cfg.Physics.Noise.Seed),
		})
		d.cam = chips.NewLepton(mono.Now, d.renderCamera)
	}
	d.server = simbus.NewServer(d, cfg.Log)
	d.server.RTPriority = cfg.RTPriority
	d.sense()
	return d
}

// Run steps the physics in real time until ctx is done.
func (d *Drone) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if d.cfg.RTPriority > 0 {
		if err := mono.RealTime(d.cfg.RTPriority); err != nil {
			d.log.Warn("physics runs without real-time priority; timing may suffer on a busy machine", "err", err)
		}
	}
	step := int64(d.cfg.Step)
	last := mono.Now()
	next := last + step
	for ctx.Err() == nil {
		mono.SleepUntil(next)
		now := mono.Now()
		// Follow real time even if a wake-up came late, but never
		// integrate more than 50 ms at once (a stopped process).
		dt := min(now-last, int64(50*time.Millisecond))
		last = now
		d.quad.Step(time.Duration(dt), d.pulses())
		d.sense()
		d.observe(now)
		next += step
		if next < now {
			next = now + step
		}
	}
	return nil
}

func (d *Drone) pulses() [4]physics.Pulse {
	var in [4]physics.Pulse
	for i := range in {
		p := d.pca.Pulse(i)
		in[i] = physics.Pulse{Width: p.Width, Period: p.Period, Present: p.Present}
	}
	return in
}

// sense feeds the physics' truth to the sensor chips.
func (d *Drone) sense() {
	accel, gyro := d.quad.IMU()
	p, temp := d.quad.Baro()
	d.imu.Sense(accel, gyro, temp)
	d.baro.Sense(p, temp)
}

func (d *Drone) observe(now int64) {
	s := d.quad.State()
	if d.cam != nil { // only the camera renders from past poses
		d.poses.push(pose{t: now, att: s.Att, pos: s.Pos})
	}
	altErr := s.Pos[2] - d.cfg.RefAltM
	if d.hoverSince.Load() == 0 && math.Abs(altErr) < 0.1 {
		d.hoverSince.Store(now)
	}
	d.ref.Observe(referee.Sample{
		T:        now,
		TiltDeg:  physics.Tilt(s) * 180 / math.Pi,
		AltErrM:  altErr,
		Airborne: s.Airborne,
		Crashed:  s.Crashed,
	})
}

// Tx implements simbus.Handler: one transaction on the virtual bus.
func (d *Drone) Tx(c simbus.Client, addr uint16, epoch uint64, w, r []byte) error {
	if err := d.i2c.fail(c.Name, addr); err != nil {
		return err
	}
	var dev chips.Device
	switch addr {
	case AddrPCA9685:
		if len(w) > 1 {
			return d.writePCA(c, epoch, w, r)
		}
		dev = d.pca
	case AddrMPU9250:
		dev = d.imu
	case AddrBMP280:
		dev = d.baro
	case AddrLepton:
		if d.cam != nil {
			return d.txCamera(c, w, r)
		}
		fallthrough
	default:
		return fmt.Errorf("%w: no device at address %#02x", simbus.ErrNACK, addr)
	}
	return nack(dev.Tx(w, r))
}

// writePCA fences, applies and records one write to the motor controller.
func (d *Drone) writePCA(c simbus.Client, epoch uint64, w, r []byte) error {
	d.pcaMu.Lock()
	defer d.pcaMu.Unlock()
	now := mono.Now()
	if err := d.fence.Admit(epoch, now); err != nil {
		d.ref.Record(referee.Write{T: now, Writer: c.Name, Epoch: epoch, Pulses: d.pulseMicros(), Refused: true})
		return err
	}
	if err := d.pca.Tx(w, r); err != nil {
		return nack(err)
	}
	d.fence.Stamp(epoch, now)
	d.ref.Record(referee.Write{
		T: now, Writer: c.Name, Epoch: epoch, Pulses: d.pulseMicros(),
		Update: chips.PCA9685WritesOutputs(w),
	})
	return nil
}

// Lease implements simbus.LeaseHandler: the motor controller's lease,
// after recording a release (the referee logs it, for its take-back
// count).
func (d *Drone) Lease(c simbus.Client, release uint64) (lease.Beat, error) {
	if release == 0 {
		return d.fence.Beat(), nil
	}
	d.pcaMu.Lock()
	defer d.pcaMu.Unlock()
	d.fence.Release(release)
	d.ref.Record(referee.Write{T: mono.Now(), Writer: c.Name, Epoch: release, Released: true})
	return d.fence.Beat(), nil
}

func (d *Drone) pulseMicros() [4]uint16 {
	var us [4]uint16
	for i := range us {
		if p := d.pca.Pulse(i); p.Present {
			us[i] = uint16(p.Width / time.Microsecond)
		}
	}
	return us
}

func nack(err error) error {
	if err == nil || errors.Is(err, simbus.ErrNACK) {
		return err
	}
	return fmt.Errorf("%w: %v", simbus.ErrNACK, err)
}

// Serve serves the bus on a unix socket at path until ctx is done. The
// socket is made accessible to every local user: flight containers run
// unprivileged.
func (d *Drone) Serve(ctx context.Context, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sim: remove stale socket %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("sim: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("sim: chmod %s: %w", path, err)
	}
	defer os.Remove(path)
	return d.server.Serve(ctx, ln)
}

// Malformed counts bus requests refused as malformed.
func (d *Drone) Malformed() uint64 { return d.server.Malformed.Load() }

// Report returns the referee's report on [from, to] (CLOCK_MONOTONIC ns;
// 0 = the log's start / now).
func (d *Drone) Report(from, to int64) referee.Report { return d.ref.Report(from, to) }

// Writes returns the logged actuator writes in [from, to].
func (d *Drone) Writes(from, to int64) []referee.Write { return d.ref.Writes(from, to) }

// Truth is the simulator's ground truth.
type Truth struct {
	T          int64      `json:"t"`
	Pos        [3]float64 `json:"pos"`
	Vel        [3]float64 `json:"vel"`
	RollDeg    float64    `json:"roll_deg"`
	PitchDeg   float64    `json:"pitch_deg"`
	YawDeg     float64    `json:"yaw_deg"`
	TiltDeg    float64    `json:"tilt_deg"`
	Motors     [4]float64 `json:"motors"`
	Armed      [4]bool    `json:"armed"`
	Airborne   bool       `json:"airborne"`
	Crashed    bool       `json:"crashed"`
	Epoch      uint64     `json:"epoch"`       // highest lease epoch the motor controller has admitted
	HoverSince int64      `json:"hover_since"` // first time within 0.1 m of the reference altitude, or 0
}

// Truth returns the current ground truth.
func (d *Drone) Truth() Truth {
	s := d.quad.State()
	deg := 180 / math.Pi
	return Truth{
		T: mono.Now(), Pos: s.Pos, Vel: s.Vel,
		RollDeg: s.Roll * deg, PitchDeg: s.Pitch * deg, YawDeg: s.Yaw * deg,
		TiltDeg: physics.Tilt(s) * deg, Motors: s.Motors, Armed: s.Armed,
		Airborne: s.Airborne, Crashed: s.Crashed,
		Epoch: d.fence.Epoch(), HoverSince: d.hoverSince.Load(),
	}
}

// Bus returns an in-process client of the virtual bus named name, for
// tests and tools that run in the same process as the drone.
func (d *Drone) Bus(name string) lease.Bus {
	return &localBus{d: d, c: simbus.Client{ID: 1<<63 | d.nextLocal.Add(1), Name: name}}
}
