package agent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/onboard"
)

func frameJSON(t *testing.T, tick int64, instance string) []byte {
	t.Helper()
	b, err := json.Marshal(handoff.Frame{Schema: "flight.state/1", Instance: instance, Version: "v1", Epoch: 3,
		Seq: uint64(tick), Tick: tick, TickNs: tick * 2_500_000, State: json.RawMessage(`{}`), Sample: json.RawMessage(`{}`),
		Out: []float64{0.5, 0.51, 0.52, 0.53}, Health: handoff.Health{RollDeg: 1.5, PitchDeg: -0.5, AltM: 2}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startRelay runs the relay of drone d1's app flight at 20 Hz on an
// embedded NATS server, into a fake MQTT client, until the test ends.
func startRelay(t *testing.T) (*nats.Conn, *brokertest.Fake) {
	t.Helper()
	ns, err := onboard.Start(onboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	fake := brokertest.NewFake("d1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RelayTelemetry(ctx, NATSOnboard(nc), fake, RelayConfig{Drone: "d1", App: "flight", Interval: 50 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(100 * time.Millisecond) // subscribed
	return nc, fake
}

// TestRelayTelemetry feeds the relay 400 Hz frames and a malformed one and
// checks that the ground gets the latest frame at about the relay's rate,
// and nothing once the frames stop.
func TestRelayTelemetry(t *testing.T) {
	nc, fake := startRelay(t)

	subject := handoff.SubjectsFor("flight").Frames()
	nc.Publish(subject, []byte(`{"schema":`)) // malformed: dropped, counted
	nc.Flush()
	time.Sleep(120 * time.Millisecond)
	start := time.Now()
	var tick int64
	for time.Since(start) < time.Second {
		tick++
		nc.Publish(subject, frameJSON(t, tick, "flight-v1"))
		time.Sleep(2500 * time.Microsecond)
	}
	nc.Flush()
	time.Sleep(200 * time.Millisecond) // the last frame goes out
	n := len(fake.Payloads("fleet/d1/telemetry"))
	time.Sleep(300 * time.Millisecond)
	if after := len(fake.Payloads("fleet/d1/telemetry")); after != n {
		t.Errorf("%d messages without new frames", after-n)
	}

	msgs := fake.Payloads("fleet/d1/telemetry")
	// About 20 in the second of frames; generous bounds for a loaded host,
	// but far from the 400 frames that came in.
	if len(msgs) < 8 || len(msgs) > 40 {
		t.Fatalf("%d telemetry messages for 1 s of %d frames at 20 Hz", len(msgs), tick)
	}
	var last report.Telemetry
	if err := json.Unmarshal(msgs[len(msgs)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last.Tick != tick || last.Instance != "flight-v1" || last.Drone != "d1" || last.App != "flight" ||
		last.Epoch != 3 || last.RollDeg != 1.5 || last.AltM != 2 || len(last.Motors) != 4 || last.Dropped != 1 {
		t.Fatalf("last message %+v, want tick %d of flight-v1 with one dropped frame", last, tick)
	}
}

func TestRelayTelemetryNeedsDroneAndApp(t *testing.T) {
	if err := RelayTelemetry(context.Background(), nil, brokertest.NewFake("d1", nil), RelayConfig{App: "flight"}); err == nil {
		t.Fatal("no error without a drone")
	}
}

// TestRelayCamera forwards each camera frame from the on-board NATS to the
// camera topic, byte for byte.
func TestRelayCamera(t *testing.T) {
	nc, fake := startRelay(t)

	frames := [][]byte{{0xFF, 0xD8, 1, 0xFF, 0xD9}, {0xFF, 0xD8, 2, 0xFF, 0xD9}, {0xFF, 0xD8, 3, 0xFF, 0xD9}}
	for _, f := range frames {
		nc.Publish(handoff.SubjectsFor("flight").Camera(), f)
	}
	nc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for len(fake.Payloads("fleet/d1/camera")) < len(frames) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := fake.Payloads("fleet/d1/camera")
	if len(got) != len(frames) {
		t.Fatalf("%d camera messages, want %d", len(got), len(frames))
	}
	for i := range frames {
		if string(got[i]) != string(frames[i]) {
			t.Fatalf("message %d = %x, want %x", i, got[i], frames[i])
		}
	}
}
