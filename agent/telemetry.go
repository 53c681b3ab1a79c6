package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
)

// TelemetryPublisher sends QoS 0 telemetry and camera messages without
// waiting for the network (implemented by *broker.Client).
type TelemetryPublisher interface {
	PublishTelemetry(payload []byte) error
	PublishCamera(payload []byte) error
}

// RelayConfig configures RelayTelemetry. The zero value of each optional
// field means the default noted beside it.
type RelayConfig struct {
	Drone    string        // required
	App      string        // required: whose frames to relay
	Interval time.Duration // between messages; 0 = 50 ms (20 Hz)
	Log      *slog.Logger  // nil = discard
	Now      func() time.Time
}

// RelayTelemetry relays the app owner's state frames from the on-board NATS
// to the ground at a fixed rate until ctx is done: the owner publishes a
// frame every control tick (400 Hz); the radio link gets the latest one
// every Interval, and nothing when no frame is new. The NATS handler only
// keeps the raw bytes, so the relay costs the flight nothing per tick.
// Camera frames (JPEG) are forwarded to fleet/<drone>/camera as they come.
func RelayTelemetry(ctx context.Context, ob Onboard, pub TelemetryPublisher, cfg RelayConfig) error {
	if cfg.Drone == "" || cfg.App == "" {
		return fmt.Errorf("agent: telemetry relay needs a drone and an app (got %q, %q)", cfg.Drone, cfg.App)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var latest atomic.Pointer[[]byte]
	stopFrames, err := ob.Subscribe(handoff.SubjectsFor(cfg.App).Frames(), func(data []byte) {
		latest.Store(&data)
	})
	if err != nil {
		return fmt.Errorf("agent: telemetry relay: %w", err)
	}
	defer stopFrames()
	// Camera frames go down as they come (9 a second from a Lepton): the
	// broker client's camera stream drops the oldest when the link is slow.
	var camDropped atomic.Uint64
	stopCamera, err := ob.Subscribe(handoff.SubjectsFor(cfg.App).Camera(), func(data []byte) {
		if pub.PublishCamera(data) != nil {
			camDropped.Add(1)
		}
	})
	if err != nil {
		return fmt.Errorf("agent: camera relay: %w", err)
	}
	defer stopCamera()

	tk := time.NewTicker(cfg.Interval)
	defer tk.Stop()
	var dropped, sent uint64
	for {
		select {
		case <-ctx.Done():
			cfg.Log.Debug("telemetry relay stopped", "sent", sent, "dropped", dropped, "camera_dropped", camDropped.Load())
			return nil
		case <-tk.C:
		}
		data := latest.Swap(nil)
		if data == nil {
			continue
		}
		f, err := handoff.DecodeFrame(*data)
		if err != nil {
			dropped++
			cfg.Log.Debug("telemetry: undecodable frame", "err", err)
			continue
		}
		b, err := json.Marshal(TelemetryOf(cfg.Drone, cfg.App, f, cfg.Now(), dropped))
		if err != nil {
			return err // a struct of numbers and strings always marshals
		}
		if err := pub.PublishTelemetry(b); err != nil {
			// Not connected: the link is down; the next one is fresher.
			continue
		}
		sent++
	}
}

// TelemetryOf reduces an owner's frame to a telemetry message.
func TelemetryOf(drone, app string, f *handoff.Frame, now time.Time, dropped uint64) report.Telemetry {
	motors := f.Out
	if motors == nil {
		motors = []float64{}
	}
	return report.Telemetry{
		Drone: drone, App: app, Instance: f.Instance, Version: f.Version, Epoch: f.Epoch, Tick: f.Tick,
		RollDeg: f.Health.RollDeg, PitchDeg: f.Health.PitchDeg, AltM: f.Health.AltM, Motors: motors,
		Handover: f.Handover != nil, Time: now.UTC().Format(time.RFC3339Nano), Dropped: dropped,
	}
}
