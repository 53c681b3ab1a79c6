// Package app runs the flight app: configuration from the environment, the
// hardware opened cold or attached, and the control loop on an absolute
// tick grid of CLOCK_MONOTONIC.
package app

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/skyswap/skyswap/images/flight/control"
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
	RateHz    float64 // FLIGHT_RATE_HZ: control rate, 50..1000; 0 = 400
	AltM      float64 // FLIGHT_ALT_M: hover altitude, 0.5..20 m; 0 = 2
	HoverS    float64 // FLIGHT_HOVER_S: hover before the pattern, s; 0 = 5 (negative not allowed)
	Pattern   string  // FLIGHT_PATTERN: hover | box; "" = box
	LeaseFile string  // FLIGHT_LEASE_FILE: the shared epoch word on a Pi; "" = /dev/shm/skyswap-lease
	LogEvery  float64 // FLIGHT_LOG_S: seconds between status logs; 0 = 1
	// RTPriority is FLIGHT_RT_PRIO: SCHED_FIFO priority of the control
	// thread, 1..99, when permitted (CAP_SYS_NICE); 0 = ordinary
	// scheduling, the default. On a Pi set it (deploy/ uses 50). On the
	// 2-vCPU development VM, SCHED_FIFO here stalled the simulator's
	// replies by 50-300 ms, so simulation runs without it.
	RTPriority int
}

// Load reads the configuration from getenv (os.Getenv in production). A
// missing or malformed setting is an error that names it.
func Load(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	str := func(key string, dst *string) { *dst = strings.TrimSpace(getenv(key)) }
	num := func(key string, dst *float64, lo, hi float64) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < lo || f > hi {
			errs = append(errs, fmt.Errorf("%s=%q: want a number from %v to %v", key, v, lo, hi))
			return
		}
		*dst = f
	}
	str("FLIGHT_BUS", &c.Bus)
	if c.Bus == "" {
		errs = append(errs, errors.New("FLIGHT_BUS is not set: use /dev/i2c-1 on a Pi or sim:/path/to/drone-sim.sock"))
	}
	str("FLIGHT_INSTANCE", &c.Instance)
	var start string
	str("FLIGHT_START", &start)
	switch Start(start) {
	case "", StartCold, StartAttach, StartCandidate, StartResume:
		c.Start = Start(start)
	default:
		errs = append(errs, fmt.Errorf("FLIGHT_START=%q: want cold, attach, candidate or resume", start))
	}
	str("FLIGHT_NATS", &c.NATS)
	if (c.Start == StartCandidate || c.Start == StartResume) && c.NATS == "" {
		errs = append(errs, fmt.Errorf("FLIGHT_NATS is not set: FLIGHT_START=%s needs the on-board NATS URL (nats://127.0.0.1:4222)", c.Start))
	}
	str("FLIGHT_APP", &c.App)
	str("FLIGHT_ON_TERM", &c.OnTerm)
	switch c.OnTerm {
	case "", "land", "exit":
	default:
		errs = append(errs, fmt.Errorf("FLIGHT_ON_TERM=%q: want land or exit", c.OnTerm))
	}
	if v := strings.TrimSpace(getenv("FLIGHT_EPOCH")); v != "" {
		e, err := strconv.ParseUint(v, 10, 64)
		if err != nil || e == 0 {
			errs = append(errs, fmt.Errorf("FLIGHT_EPOCH=%q: want a positive integer", v))
		}
		c.Epoch = e
	}
	num("FLIGHT_RATE_HZ", &c.RateHz, 50, 1000)
	num("FLIGHT_ALT_M", &c.AltM, 0.5, 20)
	c.HoverS = -1
	num("FLIGHT_HOVER_S", &c.HoverS, 0, 86400)
	str("FLIGHT_PATTERN", &c.Pattern)
	switch c.Pattern {
	case "", "hover", "box":
	default:
		errs = append(errs, fmt.Errorf("FLIGHT_PATTERN=%q: want hover or box", c.Pattern))
	}
	str("FLIGHT_LEASE_FILE", &c.LeaseFile)
	num("FLIGHT_LOG_S", &c.LogEvery, 0.05, 3600)
	var rt float64
	num("FLIGHT_RT_PRIO", &rt, 0, 99)
	c.RTPriority = int(rt)
	return c.withDefaults(), errors.Join(errs...)
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
		c.App = "flight"
	}
	if c.OnTerm == "" {
		c.OnTerm = "land"
	}
	if c.LogEvery == 0 {
		c.LogEvery = 1
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
