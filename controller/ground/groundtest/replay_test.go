package groundtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/broker"
)

// TestFlight: the recording is a real flight: 20 Hz, from the ground up,
// through a hand-over.
func TestFlight(t *testing.T) {
	frames, err := Flight()
	if err != nil {
		t.Fatal(err)
	}
	epochs := map[uint64]bool{}
	for i, f := range frames {
		epochs[f.Telemetry.Epoch] = true
		if i > 0 && (f.At < frames[i-1].At || f.Telemetry.Tick <= frames[i-1].Telemetry.Tick) {
			t.Fatalf("frame %d goes back in time: %v tick %d after %v tick %d", i, f.At, f.Telemetry.Tick, frames[i-1].At, frames[i-1].Telemetry.Tick)
		}
	}
	last := frames[len(frames)-1]
	if rate := float64(len(frames)) / last.At.Seconds(); len(frames) < 500 || rate < 15 || rate > 25 || len(epochs) < 2 ||
		frames[0].Telemetry.AltM > 0.1 || last.Telemetry.AltM < 1 {
		t.Errorf("%d frames over %v (%.1f Hz), epochs %v, altitude %.2f to %.2f", len(frames), last.At, rate, epochs,
			frames[0].Telemetry.AltM, last.Telemetry.AltM)
	}
}

// TestReplay replays under two drone ids: each message on its drone's
// topic, naming it, with ticks that keep growing.
func TestReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := brokertest.Dial(b.URL(), brokertest.PeerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := p.MustSubscribe(t, "fleet/+/telemetry", 0)
	sent := map[string]int{}
	n, err := Replay(ctx, ReplayConfig{Broker: b.URL(), Drones: []string{"a", "b"}, Duration: 500 * time.Millisecond,
		OnSent: func(drone string, _ int64, _ time.Time) { sent[drone]++ }})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 || sent["a"] != n/2 || sent["b"] != n/2 {
		t.Fatalf("sent %d: %v", n, sent)
	}
	last := map[string]int64{}
	for range n {
		m := brokertest.Receive(t, msgs, 10*time.Second)
		var tel report.Telemetry
		if err := json.Unmarshal(m.Payload, &tel); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Topic, "fleet/"+tel.Drone+"/") || tel.Tick <= last[tel.Drone] {
			t.Errorf("%s: drone %q tick %d after %d", m.Topic, tel.Drone, tel.Tick, last[tel.Drone])
		}
		last[tel.Drone] = tel.Tick
	}
	if _, err := Replay(ctx, ReplayConfig{Broker: b.URL(), Drones: []string{"a/b"}}); err == nil {
		t.Error("a drone id with a slash replayed")
	}
}
