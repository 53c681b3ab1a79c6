package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/skyswap/skyswap/hw/baro"
	"github.com/skyswap/skyswap/hw/imu"
	"github.com/skyswap/skyswap/hw/lease/leasetest"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/motors"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// testCtx returns a context that ends after d or when the test ends.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// run steps d's physics until the test ends.
func run(t *testing.T, d *sim.Drone) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// serve serves d's bus on a socket in a fresh temporary directory until the
// test ends and returns the socket's path once it accepts clients.
func serve(t *testing.T, d *sim.Drone) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sim.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, path) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// Wait for the listener: a probe client that says hello and leaves.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := simbus.Dial(context.Background(), path, "probe")
		if err == nil {
			c.Close()
			return path
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned before accepting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket %s never accepted a client: %v", path, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dial connects a socket client named name, closed when the test ends.
func dial(t *testing.T, path, name string) *simbus.Conn {
	t.Helper()
	c, err := simbus.Dial(context.Background(), path, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond every 5 ms for up to limit and reports whether it
// became true.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// minPulseCount is 1000 µs at the 400 Hz prescale (14): the period is
// 4096·15/25 MHz = 2457.6 µs, so round(1000/2457.6·4096) counts.
const minPulseCount = 1667

// initFixture is the traffic hw/motors' TestInitTraffic plays back for
// motors.Init at the default options (400 Hz, channels 0..3).
func initFixture() []i2ctest.IO {
	arm := []byte{0x06}
	for range motors.N {
		arm = append(arm, 0, 0, byte(minPulseCount&0xff), byte(minPulseCount>>8))
	}
	return []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x00, 0x31}}, // sleep, AI, ALLCALL
		{Addr: 0x40, W: []byte{0xFE, 14}},   // prescale for 400 Hz
		{Addr: 0x40, W: []byte{0x01, 0x04}}, // totem-pole outputs
		{Addr: 0x40, W: arm},                // every motor at the arming pulse
		{Addr: 0x40, W: []byte{0x00, 0x21}}, // wake with AI
	}
}

// TestDriversAgainstChipModels proves that the project's drivers and the
// virtual drone's register models agree: the cold-start Init of all three
// chips succeeds on a fresh drone, a second client can Attach to each chip
// Init left running, the sensors read the physics' rest state (1 g up, no
// rotation, sea-level pressure), a motor Set lands as the intended pulse
// width with the ESCs armed by Init's minimum pulses, and the exact bytes
// motors.Init puts on the bus are the ones hw/motors' TestInitTraffic plays
// back: that fixture is what the chip model really accepts, not a guess.
func TestDriversAgainstChipModels(t *testing.T) {
	d := sim.New(sim.Config{})
	run(t, d)
	ctx := testCtx(t, 10*time.Second)

	ground := d.Bus("ground")
	ground.SetEpoch(1)
	rec := &i2ctest.Record{Bus: ground}
	// ArmTime 700 ms is well over the ESCs' 300 ms.
	m, err := motors.Init(ctx, leasetest.Bus(rec), &motors.Opts{ArmTime: 700 * time.Millisecond})
	if err != nil {
		t.Fatalf("motors.Init: %v", err)
	}
	want := initFixture()
	if len(rec.Ops) != len(want) {
		t.Fatalf("motors.Init made %d transactions, the fixture plays back %d: %+v", len(rec.Ops), len(want), rec.Ops)
	}
	for i, op := range rec.Ops {
		if op.Addr != want[i].Addr || !bytes.Equal(op.W, want[i].W) || len(op.R) != 0 {
			t.Errorf("op %d: addr %#02x w % x r % x; fixture: addr %#02x w % x", i, op.Addr, op.W, op.R, want[i].Addr, want[i].W)
		}
	}

	gi, err := imu.Init(ctx, ground, nil)
	if err != nil {
		t.Fatalf("imu.Init: %v", err)
	}
	gb, err := baro.Init(ctx, ground, nil)
	if err != nil {
		t.Fatalf("baro.Init: %v", err)
	}

	second := d.Bus("second")
	am, err := motors.Attach(second, nil)
	if err != nil {
		t.Fatalf("motors.Attach after Init: %v", err)
	}
	ai, err := imu.Attach(second, nil)
	if err != nil {
		t.Fatalf("imu.Attach after Init: %v", err)
	}
	ab, err := baro.Attach(second, nil)
	if err != nil {
		t.Fatalf("baro.Attach after Init: %v", err)
	}

	for name, dev := range map[string]*imu.Dev{"init": gi, "attach": ai} {
		s, err := dev.Read()
		if err != nil {
			t.Fatalf("imu.Read (%s): %v", name, err)
		}
		wantA := [3]float64{0, 0, 9.81}
		for k := range 3 {
			if math.Abs(s.Accel[k]-wantA[k]) > 0.2 || math.Abs(s.Gyro[k]) > 0.01 {
				t.Fatalf("imu.Read (%s) at rest: accel %.3f gyro %.4f, want accel ≈ %v and gyro ≈ 0", name, s.Accel, s.Gyro, wantA)
			}
		}
		t.Logf("imu (%s) at rest: accel %.4f m/s², gyro %.5f rad/s, %.1f °C", name, s.Accel, s.Gyro, s.TempC)
	}
	for name, dev := range map[string]*baro.Dev{"init": gb, "attach": ab} {
		p, temp, err := dev.Read()
		if err != nil {
			t.Fatalf("baro.Read (%s): %v", name, err)
		}
		if math.Abs(p-101325) > 30 {
			t.Fatalf("baro.Read (%s) on the ground: %.1f Pa, want 101325 ± 30", name, p)
		}
		t.Logf("baro (%s) on the ground: %.2f Pa, %.2f °C", name, p, temp)
	}

	since := mono.Now()
	if err := m.Set([motors.N]float64{0.5, 0.5, 0.5, 0.5}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	ws := d.Writes(since, 0)
	if len(ws) != 1 {
		t.Fatalf("%d writes logged for one Set, want 1: %+v", len(ws), ws)
	}
	w := ws[0]
	if w.Writer != "ground" || w.Epoch != 1 || !w.Update || w.Refused {
		t.Fatalf("logged write %+v, want an applied motor update by ground at epoch 1", w)
	}
	for _, us := range w.Pulses {
		if us < 1498 || us > 1502 {
			t.Fatalf("pulses after Set(0.5): %v µs, want ≈1500 on each", w.Pulses)
		}
	}
	// A 1500 µs pulse cannot arm an ESC, so if they are armed, Init's
	// minimum pulses armed them; poll only to let the physics thread catch
	// up on a loaded machine.
	if !waitFor(2*time.Second, func() bool { return d.Truth().Armed == [4]bool{true, true, true, true} }) {
		t.Fatalf("ESCs armed %v after Init held the minimum pulse for 700 ms, want all", d.Truth().Armed)
	}
	got, err := am.Read()
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Abs(got[i]-0.5) > 0.002 {
			t.Fatalf("attached reader sees throttles %v, want 0.5 each", got)
		}
	}
}

// TestHTTPHandler proves the referee/truth endpoint answers what its doc
// promises: /healthz is 200, /state and /report decode with their documented
// JSON fields and reflect the drone (epoch, armed, motor updates), /writes
// lists the log, and a malformed window is a 400 that names the bad
// parameter.
func TestHTTPHandler(t *testing.T) {
	d := sim.New(sim.Config{})
	run(t, d)
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	ctx := testCtx(t, 10*time.Second)

	bus := d.Bus("http-writer")
	bus.SetEpoch(3)
	m, err := motors.Init(ctx, bus, &motors.Opts{ArmTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := m.Set([motors.N]float64{0.1, 0.1, 0.1, 0.1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}

	get := func(t *testing.T, path string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, body
	}
	// fields decodes body as a JSON object and checks it has keys.
	fields := func(t *testing.T, path string, body []byte, keys ...string) {
		t.Helper()
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Fatalf("%s: %v in %s", path, err, body)
		}
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Fatalf("%s: no %q field in %s", path, k, body)
			}
		}
	}

	cases := []struct {
		path   string
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"/healthz", 200, func(t *testing.T, body []byte) {
			if strings.TrimSpace(string(body)) != "ok" {
				t.Fatalf("body %q", body)
			}
		}},
		{"/state", 200, func(t *testing.T, body []byte) {
			fields(t, "/state", body, "armed", "epoch", "pos", "crashed", "hover_since")
			var tr sim.Truth
			if err := json.Unmarshal(body, &tr); err != nil {
				t.Fatal(err)
			}
			if tr.Epoch != 3 || tr.T == 0 {
				t.Fatalf("state %+v, want epoch 3 and a timestamp", tr)
			}
		}},
		{"/report?last=10s", 200, func(t *testing.T, body []byte) {
			fields(t, "/report", body, "max_gap_ms", "p99_gap_ms", "updates", "writers", "stale_refused", "samples", "crashed")
			var r referee.Report
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			// Init's arming write plus five Sets; the physics samples too.
			if r.Updates < 6 || r.MaxGapMs <= 0 || r.Samples == 0 || len(r.Writers) != 1 || r.Writers[0] != "http-writer" {
				t.Fatalf("report %+v, want ≥6 updates by http-writer, a gap and samples", r)
			}
		}},
		{"/report?last=1s", 200, func(t *testing.T, body []byte) {
			fields(t, "/report", body, "max_gap_ms", "mean_gap_ms", "alt_err_max_m", "seconds")
		}},
		{"/report?from=0&to=0", 200, func(t *testing.T, body []byte) {
			fields(t, "/report", body, "max_gap_ms")
		}},
		{"/writes", 200, func(t *testing.T, body []byte) {
			var ws []referee.Write
			if err := json.Unmarshal(body, &ws); err != nil {
				t.Fatal(err)
			}
			if len(ws) < 6 || ws[len(ws)-1].Writer != "http-writer" || ws[len(ws)-1].Epoch != 3 {
				t.Fatalf("writes %+v", ws)
			}
		}},
		{"/report?from=abc", 400, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `from="abc"`) {
				t.Fatalf("400 body %q does not name from", body)
			}
		}},
		{"/report?to=-5", 400, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `to="-5"`) {
				t.Fatalf("400 body %q does not name to", body)
			}
		}},
		{"/report?last=-1s", 400, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `last="-1s"`) {
				t.Fatalf("400 body %q does not name last", body)
			}
		}},
		{"/camera?last=10s", 200, func(t *testing.T, body []byte) {
			fields(t, "/camera", body, "readers", "frames", "max_frame_gap_ms", "corrupt_packets", "config_while_streaming", "config_commands")
		}},
		{"/camera/frames?from=0", 200, func(t *testing.T, body []byte) {
			if strings.TrimSpace(string(body)) != "[]" {
				t.Fatalf("no frames read: body %q, want []", body)
			}
		}},
		{"/camera?from=abc", 400, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `from="abc"`) {
				t.Fatalf("400 body %q does not name from", body)
			}
		}},
		{"/writes?from=x", 400, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `from="x"`) {
				t.Fatalf("400 body %q does not name from", body)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			status, body := get(t, tc.path)
			if status != tc.status {
				t.Fatalf("GET %s: %d %s, want %d", tc.path, status, body, tc.status)
			}
			tc.check(t, body)
		})
	}
}
