package groundtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/report"
)

// flightGz is a real flight's telemetry as the ground received it: make
// demo (drone "demo"), 43 s at 20 Hz from take-off, through the v1 -> v2
// hand-over 10.3 s in and the box pattern, one JSON line per message:
// {"ms": after the first, "t": the message}.
//
//go:embed testdata/flight.jsonl.gz
var flightGz []byte

// Frame is one telemetry message of the recorded flight.
type Frame struct {
	At        time.Duration // after the recording's first message
	Telemetry report.Telemetry
}

// Flight returns the recorded flight, in order.
func Flight() ([]Frame, error) {
	zr, err := gzip.NewReader(bytes.NewReader(flightGz))
	if err != nil {
		return nil, fmt.Errorf("groundtest: flight recording: %w", err)
	}
	var out []Frame
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var line struct {
			Ms int64            `json:"ms"`
			T  report.Telemetry `json:"t"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("groundtest: flight recording line %d: %w", len(out)+1, err)
		}
		out = append(out, Frame{At: time.Duration(line.Ms) * time.Millisecond, Telemetry: line.T})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("groundtest: flight recording: %w", err)
	}
	if len(out) < 2 {
		return nil, errors.New("groundtest: the flight recording is empty")
	}
	return out, nil
}

// ReplayConfig configures Replay. Broker and Drones are required; every
// other zero value means the default documented on the field.
type ReplayConfig struct {
	Broker string   // the MQTT broker's URL
	Drones []string // the ids to replay the flight under, each on its own topic
	// Duration is how long to replay, looping the recording; 0 means
	// once through it.
	Duration time.Duration
	// OnSent is called right after each message is handed to the
	// client, with its drone, its tick (unique per drone) and when;
	// nil means nothing.
	OnSent func(drone string, tick int64, at time.Time)
}

// Replay publishes the recorded flight's telemetry (QoS 0) under each of
// cfg.Drones at the pace it was recorded, each drone's online state
// (retained) first. Each loop adds to the ticks and epochs, so that they
// keep growing as a drone's do. It returns the messages sent when
// cfg.Duration is over or ctx ends.
func Replay(ctx context.Context, cfg ReplayConfig) (int, error) {
	frames, err := Flight()
	if err != nil {
		return 0, err
	}
	for _, d := range cfg.Drones {
		if err := broker.CheckDrone(d); err != nil {
			return 0, fmt.Errorf("groundtest: replay as %q: %w", d, err)
		}
	}
	p, err := brokertest.Dial(cfg.Broker, brokertest.PeerOptions{})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	for _, d := range cfg.Drones {
		st, _ := json.Marshal(report.State{Drone: d, Online: true, Committed: map[string]string{}, Owner: map[string]string{}})
		if err := p.Publish(broker.Topics(d).State, 1, true, st); err != nil {
			return 0, err
		}
	}
	last := frames[len(frames)-1]
	span := last.At + 50*time.Millisecond
	ticks := last.Telemetry.Tick - frames[0].Telemetry.Tick + 20
	start := time.Now()
	sent := 0
	for loop := 0; ; loop++ {
		for _, f := range frames {
			at := start.Add(time.Duration(loop)*span + f.At)
			if cfg.Duration > 0 && at.Sub(start) >= cfg.Duration || cfg.Duration == 0 && loop > 0 {
				return sent, nil
			}
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
				return sent, nil
			}
			for _, d := range cfg.Drones {
				t := f.Telemetry
				t.Drone, t.Tick, t.Epoch = d, t.Tick+int64(loop)*ticks, t.Epoch+uint64(loop)*last.Telemetry.Epoch
				now := time.Now()
				t.Time = now.UTC().Format(time.RFC3339Nano)
				b, _ := json.Marshal(t)
				if err := p.Publish(broker.Topics(d).Telemetry, 0, false, b); err != nil {
					return sent, err
				}
				sent++
				if cfg.OnSent != nil {
					cfg.OnSent(d, t.Tick, now)
				}
			}
		}
	}
}
