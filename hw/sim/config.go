package sim

import (
	"time"

	"github.com/skyswap/skyswap/envconf"
	"github.com/skyswap/skyswap/hw/sim/physics"
)

// Settings is the drone-sim command's configuration, read from SIM_*
// variables by LoadSettings. The zero value of each field means the default
// noted beside it.
type Settings struct {
	Socket  string  // SIM_SOCKET: the bus socket; "" = /run/skyswap/sim.sock
	HTTP    string  // SIM_HTTP: referee and truth endpoint; "" = 127.0.0.1:7460; "off" disables
	GustN   float64 // SIM_GUST_N: gust force std dev, N; 0 = calm
	GustNm  float64 // SIM_GUST_NM: gust torque std dev, N·m; 0 = calm
	Noise   bool    // SIM_NOISE: "1" adds realistic sensor noise; "" or "0" = exact
	Seed    int64   // SIM_SEED: seeds gusts and noise; 0 = 1
	TickHz  float64 // SIM_TICK_HZ: the flight loop's rate for the referee; 0 = 400
	RefAltM float64 // SIM_REF_ALT_M: reference altitude for the referee; 0 = 2
	// RTPriority is SIM_RT_PRIO: SCHED_FIFO priority of the physics and bus
	// threads, and in drone-sim of all its threads, when permitted; 0 =
	// ordinary scheduling, the default. With the flight loop under
	// SCHED_FIFO (FLIGHT_RT_PRIO) set it above the loop's (the soak: 60
	// over 50): the simulator stands in for hardware, which answers at
	// once, and below the loop its replies stalled.
	RTPriority int
	// NoCamera is SIM_CAMERA=0: no thermal camera; "" or "1" = a Lepton 2.5
	// on I2C 0x2A and SPI chip select 0.
	NoCamera bool
}

// LoadSettings reads Settings from getenv. A malformed setting is an error
// naming it.
func LoadSettings(getenv func(string) string) (Settings, error) {
	s := Settings{Socket: "/run/skyswap/sim.sock", HTTP: "127.0.0.1:7460", Seed: 1}
	r := envconf.New(getenv)
	r.String("SIM_SOCKET", &s.Socket)
	r.String("SIM_HTTP", &s.HTTP)
	r.Float("SIM_GUST_N", &s.GustN, 0, 20)
	r.Float("SIM_GUST_NM", &s.GustNm, 0, 1)
	r.Float("SIM_TICK_HZ", &s.TickHz, 1, 10000)
	r.Float("SIM_REF_ALT_M", &s.RefAltM, 0, 100)
	var rt int64
	r.Int("SIM_RT_PRIO", &rt, 0, 99)
	s.RTPriority = int(rt)
	r.Bool("SIM_NOISE", &s.Noise)
	camera := true
	r.Bool("SIM_CAMERA", &camera)
	s.NoCamera = !camera
	r.Int("SIM_SEED", &s.Seed, -1<<62, 1<<62)
	return s, r.Err()
}

// Realistic sensor noise for an MPU9250 and BMP280 on a vibrating frame.
var realisticNoise = physics.Noise{Gyro: 0.005, Accel: 0.05, Baro: 0.05}

// Config turns settings into a drone configuration.
func (s Settings) Config() Config {
	var c Config
	c.TickHz, c.RefAltM, c.RTPriority, c.NoCamera = s.TickHz, s.RefAltM, s.RTPriority, s.NoCamera
	if s.GustN > 0 || s.GustNm > 0 {
		c.Physics.Gusts = physics.Gusts{Force: s.GustN, Torque: s.GustNm, Tau: time.Second, Seed: s.Seed}
	}
	if s.Noise {
		c.Physics.Noise = realisticNoise
		c.Physics.Noise.Seed = s.Seed + 1
	}
	return c
}
