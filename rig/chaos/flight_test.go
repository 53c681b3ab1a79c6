package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/rig"
)

// TestFlightThroughI2CBurst: the flight app (a process here; the container
// test below does the same in containers) flies on through a burst that
// fails a fifth of its IMU reads for two seconds, sent by skyswap-chaos to
// the simulator: it counts each failed read as a sensor error and keeps
// driving the motors on its last sample. No timing is judged: the referee
// must see the drone airborne, uncrashed and driven all along.
func TestFlightThroughI2CBurst(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bins, err := rig.Build(ctx, dir, "", "v1")
	if err != nil {
		t.Fatal(err)
	}
	var logs rig.LogBuffer
	s, err := rig.StartSim(ctx, bins.Sim, dir, []string{"SIM_GUST_N=0.5", "SIM_NOISE=1"}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var flightLog rig.LogBuffer
	p, err := rig.Start(bins.Flight, []string{"FLIGHT_BUS=sim:" + s.Socket, "FLIGHT_INSTANCE=flight-v1",
		"FLIGHT_PATTERN=hover", "FLIGHT_ON_TERM=exit", "FLIGHT_LOG_S=0.2"}, &flightLog)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	defer func() {
		if t.Failed() {
			t.Logf("flight log (tail):\n%s\ndrone-sim log (tail):\n%s", flightLog.Tail(3000), logs.Tail(2000))
		}
	}()
	if _, err := s.WaitHover(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// skyswap-chaos, selecting the flight app by label, sends the burst.
	c := &fakeContainers{list: []containers.Status{{ID: "flight-v1", Running: true, Pid: uint32(p.Pid()),
		Labels: map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v1"}}}}
	from := mono.Now()
	evs := runFaults(t, c, realClock{}, Selector{"io.skyswap.app": "flight"}, Config{Sim: "http://" + s.HTTP},
		"kind=i2c,for=2s,rate=0.2,addr=0x68")
	to := mono.Now()
	if len(evs) != 1 || !evs[0].OK || evs[0].Container != "flight-v1" {
		t.Fatalf("events %+v, want the burst sent for flight-v1", evs)
	}
	failed := i2cFaults(t, s.HTTP).ByClient["flight-v1"]
	mark := len(flightLog.String())

	r, err := s.Report(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("burst of %.1f s: %d IMU reads failed; referee: %d motor updates, max gap %.1f ms, tilt max %.2f°, alt err max %.2f m",
		float64(to-from)/1e9, failed, r.Updates, r.MaxGapMs, r.AttErrMaxDeg, r.AltErrMaxM)
	if failed == 0 {
		t.Fatal("the burst failed no IMU read")
	}
	// Half the ticks is a bound no loaded machine misses; a loop stopped
	// by the errors would be far below it.
	if r.Crashed || !r.Airborne || float64(r.Updates) < 0.5*400*r.Seconds {
		t.Fatalf("through the burst: crashed %v, airborne %v, %d motor updates in %.1f s", r.Crashed, r.Airborne, r.Updates, r.Seconds)
	}
	// The app counted every failed read: its next status says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, ok := lastSensorErrors(flightLog.String()[mark:]); ok {
			if n != failed {
				t.Fatalf("the app counts %d sensor errors; the simulator failed %d of its reads", n, failed)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no status line from the flight app within 10 s of the burst")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastSensorErrors is the sensor error count of the last status line in
// a flight app's JSON log.
func lastSensorErrors(log string) (uint64, bool) {
	var n uint64
	found := false
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l struct {
			Msg          string  `json:"msg"`
			SensorErrors *uint64 `json:"sensor_errors"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "status" && l.SensorErrors != nil {
			n, found = *l.SensorErrors, true
		}
	}
	return n, found
}

// i2cFaults reads the simulator's count of failed transactions.
func i2cFaults(t *testing.T, addr string) sim.I2CFaults {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/faults/i2c")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var f sim.I2CFaults
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f
}
