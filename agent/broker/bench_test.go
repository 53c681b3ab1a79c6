package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
)

// Latencies on loopback through a real Mosquitto, one message at a time:
// go test -run - -bench . ./agent/broker

// reportLatency reports the median and p99 of d.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// The ground publishes a command (QoS 1) -> onCommand has it.
func BenchmarkCommandLatency(b *testing.B) {
	m := brokertest.Start(b, nil)
	got := make(chan time.Time, 1)
	connect(b, m.Config("d1"), func([]byte) { got <- time.Now() })
	ground := m.Peer(b, "")
	payload := []byte(`{"id":"deploy-42","kind":"status","drone":"d1"}`)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := ground.Publish("fleet/d1/cmd", 1, false, payload); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	reportLatency(b, lat)
}

// PublishEvent returns (the broker's PUBACK).
func BenchmarkPublishEvent(b *testing.B) {
	m := brokertest.Start(b, nil)
	c := connect(b, m.Config("d1"), func([]byte) {})
	ctx := ctxFor(b, time.Hour)
	payload := []byte(`{"phase":"shadow","t":"2025-06-01T12:00:00.000Z"}`)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := c.PublishEvent(ctx, payload); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// PublishTelemetry (QoS 0) -> a ground subscriber has it.
func BenchmarkTelemetryToGround(b *testing.B) {
	m := brokertest.Start(b, nil)
	c := connect(b, m.Config("d1"), func([]byte) {})
	ch := m.Peer(b, "").MustSubscribe(b, "fleet/d1/telemetry", 0)
	payload := []byte(`{"att":[0.01,-0.02,1.57],"alt":1.50,"motors":[0.5,0.5,0.5,0.5],"owner":"flight-v1","epoch":3}`)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := c.PublishTelemetry(payload); err != nil {
			b.Fatal(err)
		}
		brokertest.Receive(b, ch, wait)
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}
