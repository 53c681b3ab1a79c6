// Package app runs the flight app: configuration from the environment, the
// hardware opened cold or attached, and the control loop on an absolute
// tick grid of CLOCK_MONOTONIC.
package app

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/skyswap/skyswap/envconf"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/flight/control"
	"github.com/skyswap/skyswap/images/labels"
)

// Start says how the app takes the hardware.
type Start string

// Start modes.
const (
	// StartCold initialises the chips on the ground, arms and takes off.
	StartCold Start = "cold"
	// StartAttach adopts running chips and only reads them: an observer
	// that estimates the attitude and never writes an actuator.
	StartAttach Start = "attach"
	// StartCandidate adopts running chips read-only, shadows the owner's
	// state frames and takes over when the owner hands over (needs
	// FLIGHT_NATS).
	StartCandidate Start = "candidate"
	// StartResume adopts running chips and drives them at once with no
	// state, assuming a hover at FLIGHT_ALT_M: an update without state
	// transfer (the baselines).
	StartResume Start = "resume"
)

// Schema is the id of the controller state this build publishes.
const Schema = "flight.state/1"

// Accepts lists the state schemas this build hydrates from, comma
// separated; set at build time like Version. The image declares it in a
// label.
var Accepts = Schema

// Features lists the optional features of this build, comma separated
// ("camera"); set at build time like Version (images/build.FlightFeatures:
// v1 has none, v2 adds the camera).
var Features = ""

// HasFeature reports whether this build has feature f.
func HasFeature(f string) bool { return slices.Contains(strings.Split(Features, ","), f) }

// Config is the app's configuration; Load fills it from FLIGHT_* variables.
// The zero value of each field means the default noted beside it.
type Config struct {
	Bus       string  // FLIGHT_BUS: "sim:/path/drone-sim.sock" or "/dev/i2c-1" (required)
	Instance  string  // FLIGHT_INSTANCE: writer identity; "" = flight-<version>-<pid>
	Start     Start   // FLIGHT_START: cold | attach | candidate | resume; "" = cold
	NATS      string  // FLIGHT_NATS: on-board NATS URL; "" = no hand-over (required for candidate and resume)
	App       string  // FLIGHT_APP: hand-over namespace; "" = flight
	OnTerm    string  // FLIGHT_ON_TERM: land | exit (hold the outputs and exit; a stateless app); "" = land
	Epoch     uint64  // FLIGHT_EPOCH: lease epoch for writes; 0 = 1
	RateHz    float64 // FLIGHT_RATE_HZ: control rate, 50..2000; 0 = 400
	AltM      float64 // FLIGHT_ALT_M: hover altitude, 0.5..20 m; 0 = 2
	HoverS    float64 // FLIGHT_HOVER_S: hover before the pattern, s; 0 = 5 (negative not allowed)
	Pattern   string  // FLIGHT_PATTERN: hover | box; "" = box
	LeaseFile string  // FLIGHT_LEASE_FILE: the shared epoch word on a Pi; "" = /dev/shm/skyswap-lease
	LogEvery  float64 // FLIGHT_LOG_S: seconds between status logs; 0 = 1
	// RTPriority is FLIGHT_RT_PRIO: SCHED_FIFO priority of the control
	// thread, 1..99, when permitted (CAP_SYS_NICE: in a container, the
	// agent's AGENT_APP_RT_MS grants it); 0 = ordinary scheduling, the
	// default. A drone sets it (deploy/ uses 50). In simulation put the
	// simulator above it (SIM_RT_PRIO), as the soak does: under the loop,
	// the simulator's replies stalled by 50-300 ms on the 2-vCPU VM.
	// An instance that does not drive runs one below it: see priority.
	RTPriority int
	// Camera is FLIGHT_CAMERA: on | off; "" = on when the build has the
	// camera feature (v2 and later). On, the owner streams the Lepton's
	// frames to the on-board NATS; without FLIGHT_NATS there is nowhere to
	// stream them, and the camera stays closed.
	Camera bool
	// CameraSPI is FLIGHT_CAMERA_SPI: the Lepton's video port; "" = the
	// simulator's socket when FLIGHT_BUS is sim:, else /dev/spidev0.0.
	// Its command interface is on FLIGHT_BUS (I2C address 0x2A).
	CameraSPI string
}

// Load reads the configuration from getenv (os.Getenv in production). A
// missing or malformed setting is an error that names it.
func Load(getenv func(string) string) (Config, error) {
	c := Config{HoverS: -1}
	r := envconf.New(getenv)
	r.Required("FLIGHT_BUS", &c.Bus, "use /dev/i2c-1 on a Pi or sim:/path/to/drone-sim.sock")
	r.String("FLIGHT_INSTANCE", &c.Instance)
	var start string
	r.OneOf("FLIGHT_START", &start, string(StartCold), string(StartAttach), string(StartCandidate), string(StartResume))
	c.Start = Start(start)
	r.String("FLIGHT_NATS", &c.NATS)
	if (c.Start == StartCandidate || c.Start == StartResume) && c.NATS == "" {
		r.Fail("FLIGHT_NATS is not set: FLIGHT_START=%s needs the on-board NATS URL (nats://127.0.0.1:4222)", c.Start)
	}
	r.String("FLIGHT_APP", &c.App)
	r.OneOf("FLIGHT_ON_TERM", &c.OnTerm, "land", "exit")
	var epoch int64
	r.Int("FLIGHT_EPOCH", &epoch, 1, 1<<62)
	c.Epoch = uint64(epoch)
	r.Float("FLIGHT_RATE_HZ", &c.RateHz, 50, 2000)
	r.Float("FLIGHT_ALT_M", &c.AltM, 0.5, 20)
	r.Float("FLIGHT_HOVER_S", &c.HoverS, 0, 86400)
	r.OneOf("FLIGHT_PATTERN", &c.Pattern, "hover", "box")
	r.String("FLIGHT_LEASE_FILE", &c.LeaseFile)
	r.Float("FLIGHT_LOG_S", &c.LogEvery, 0.05, 3600)
	var rt int64
	r.Int("FLIGHT_RT_PRIO", &rt, 0, 99)
	c.RTPriority = int(rt)
	camera := ""
	r.OneOf("FLIGHT_CAMERA", &camera, "on", "off")
	switch {
	case camera == "on" && !HasFeature("camera"):
		r.Fail("FLIGHT_CAMERA=on: flight %s has no camera (it came with v2); unset FLIGHT_CAMERA or deploy a release with the camera", Version)
	case camera == "":
		c.Camera = HasFeature("camera")
	default:
		c.Camera = camera == "on"
	}
	r.String("FLIGHT_CAMERA_SPI", &c.CameraSPI)
	return c.withDefaults(), r.Err()
}

func (c Config) withDefaults() Config {
	if c.Start == "" {
		c.Start = StartCold
	}
	if c.Epoch == 0 {
		c.Epoch = 1
	}
	if c.RateHz == 0 {
		c.RateHz = 400
	}
	if c.AltM == 0 {
		c.AltM = 2
	}
	if c.HoverS < 0 {
		c.HoverS = 5
	}
	if c.Pattern == "" {
		c.Pattern = "box"
	}
	if c.App == "" {
		c.App = labels.DefaultApp
	}
	if c.OnTerm == "" {
		c.OnTerm = "land"
	}
	if c.LogEvery == 0 {
		c.LogEvery = 1
	}
	if c.CameraSPI == "" {
		c.CameraSPI = "/dev/spidev0.0"
		if strings.HasPrefix(c.Bus, "sim:") {
			c.CameraSPI = c.Bus
		}
	}
	if c.Instance == "" {
		c.Instance = fmt.Sprintf("flight-%s-%d", Version, os.Getpid())
	}
	return c
}

// Mission returns the control mission the configuration asks for.
func (c Config) Mission() control.Mission {
	m := control.DefaultMission
	m.AltM = c.AltM
	m.HoverS = c.HoverS
	m.Pattern = c.Pattern
	return m
}

// Version is the app's version, set at build time with
// -ldflags "-X github.com/skyswap/skyswap/images/flight/app.Version=v1".
var Version = "dev"

// helperPriority is the real-time priority of the process's other threads
// (NATS, the camera, the collector, the runtime's own) under RTPriority:
// mono.HelperPriority (mono.Helpers says why). 0: none.
func (c Config) helperPriority() int {
	if c.RTPriority <= 0 {
		return 0
	}
	return mono.HelperPriority
}

// priority is the control thread's real-time priority while it drives
// the motors (RTPriority) or not: one below, at least 1. A candidate
// starting up beside the owner (its first ticks, its catch-up, the
// simulator threads it wakes) and a standby then never hold a CPU the
// owner's tick needs, and the owner preempts them the moment it wakes.
// On the 2-vCPU VM the worst hand-over gaps came 0.4 s before the
// cut-over, as the candidate started. 0: no real-time scheduling.
func (c Config) priority(driving bool) int {
	if driving || c.RTPriority <= 1 {
		return c.RTPriority
	}
	return c.RTPriority - 1
}
