package app

import (
	"testing"

	"github.com/skyswap/skyswap/images/flight/control"
)

// TestFrameEncodingAllocatesNothing: the state and sample the loop puts in
// each frame are encoded without allocating (at 1000 Hz, json.Marshal had
// the collector running every 0.7 s).
func TestFrameEncodingAllocatesNothing(t *testing.T) {
	var l loop
	cfg, err := Load(func(k string) string { return map[string]string{"FLIGHT_BUS": "sim:/run/drone-sim.sock"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	l.ctl = control.New(cfg.RateHz, control.DefaultAirframe, control.DefaultGains, cfg.Mission(), 101325)
	l.in = control.Sensors{Accel: [3]float64{0, 0, 9.81}, BaroPa: 101325, BaroValid: true}
	encode := func() {
		if _, err := l.stateJSON.Encode(&l.ctl.S); err != nil {
			t.Fatal(err)
		}
		if _, err := l.sampleJSON.Encode(&l.in); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(200, encode); n != 0 {
		t.Errorf("encoding a frame's state and sample allocates %v times, want none", n)
	}
}
