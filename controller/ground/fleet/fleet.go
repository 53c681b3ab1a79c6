// Package fleet is the ground station's picture of the fleet, folded from
// what the drones publish on MQTT (agent/report's wire format) and the
// commands seen on their command topics: per drone its summary (online or
// offline by its last will, committed releases, owner, update in
// progress), its latest telemetry and the last 30 s of it for the plots,
// cut-over markers, every update phase by phase, and the newest camera
// frame with its rate and metadata.
//
// Handle returns, for each message, the page messages it makes (the page
// protocol: Type* constants, JSON); Snapshot is the whole picture for a
// page that connects. A malformed message changes nothing but its
// warning's count, which goes to the page too. The package does no I/O;
// the caller brings the messages and their arrival times.
package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
)

// Defaults of Config's zero fields.
const (
	DefaultHistory   = 30 * time.Second
	DefaultUpdates   = 10
	DefaultMaxDrones = 1000
	// MaxPayload is the largest message the fleet reads; larger ones
	// are malformed. A camera frame is a few KiB.
	MaxPayload = 1 << 20
)

// Config configures New. Every zero value means the default documented on
// the field.
type Config struct {
	// History is how much telemetry each drone keeps for a page that
	// connects; 0 means DefaultHistory (30 s).
	History time.Duration
	// Updates is how many updates each drone keeps; 0 means
	// DefaultUpdates (10).
	Updates int
	// MaxDrones is how many drones the fleet follows; messages of more
	// are counted as malformed. 0 means DefaultMaxDrones (1000).
	MaxDrones int
}

// Stats are the fleet's counters.
type Stats struct {
	Drones    int               `json:"drones"`
	Messages  map[string]uint64 `json:"messages"` // by topic kind
	Malformed uint64            `json:"malformed"`
}

// Fleet is the picture. It is safe for concurrent use.
type Fleet struct {
	cfg Config

	mu        sync.Mutex
	drones    map[string]*drone
	order     []string
	warnings  map[string]*Warning // topics that name no drone, by "": one bucket
	messages  map[string]uint64
	malformed uint64
}

// New returns an empty fleet.
func New(cfg Config) *Fleet {
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Updates <= 0 {
		cfg.Updates = DefaultUpdates
	}
	if cfg.MaxDrones <= 0 {
		cfg.MaxDrones = DefaultMaxDrones
	}
	return &Fleet{cfg: cfg, drones: map[string]*drone{}, warnings: map[string]*Warning{}, messages: map[string]uint64{}}
}

// Topic kinds, the last segment of fleet/<drone>/<kind>.
const (
	kindState     = "state"
	kindEvents    = "events"
	kindTelemetry = "telemetry"
	kindCamera    = "camera"
	kindCmd       = "cmd"
)

// Filters are the MQTT topic filters whose messages Handle reads.
func Filters() []string {
	var fs []string
	for _, k := range slices.Sorted(maps.Keys(folds)) {
		fs = append(fs, "fleet/+/"+k)
	}
	return fs
}

// errTooLarge is a message over MaxPayload.
var errTooLarge = fmt.Errorf("larger than %d bytes", MaxPayload)

// Handle folds the message received on topic at time at and returns the
// page messages it makes, JSON-encoded (none for a message that changes
// nothing the page shows, one warning for a malformed one).
func (f *Fleet) Handle(topic string, payload []byte, at time.Time) [][]byte {
	id, kind, ok := broker.ParseTopic(topic)
	if !ok {
		return f.topicWarning(topic, at)
	}
	fold, ok := folds[kind]
	if !ok {
		return nil // a topic of a later agent: not ours to judge
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.messages[kind]++
	d, err := f.drone(id)
	if err != nil {
		return f.warnLocked("", "fleet", err, at)
	}
	var out []any
	if len(payload) > MaxPayload {
		err = errTooLarge
	} else {
		out, err = fold(d, payload, at, f.cfg)
	}
	if err != nil {
		return f.warnLocked(id, kind, err, at)
	}
	return encode(out)
}

// folds are how each topic kind changes a drone.
var folds = map[string]func(d *drone, payload []byte, at time.Time, cfg Config) ([]any, error){
	kindTelemetry: func(d *drone, p []byte, at time.Time, cfg Config) ([]any, error) {
		return d.telemetry(p, at, cfg.History)
	},
	kindState:  func(d *drone, p []byte, _ time.Time, _ Config) ([]any, error) { return d.state(p) },
	kindEvents: func(d *drone, p []byte, at time.Time, cfg Config) ([]any, error) { return d.event(p, at, cfg.Updates) },
	kindCmd: func(d *drone, p []byte, at time.Time, cfg Config) ([]any, error) {
		return d.command(p, at, cfg.Updates)
	},
	kindCamera: func(d *drone, p []byte, at time.Time, _ Config) ([]any, error) { return d.camera(p, at) },
}

// drone returns the drone id, added if new. f.mu is held.
func (f *Fleet) drone(id string) (*drone, error) {
	if d, ok := f.drones[id]; ok {
		return d, nil
	}
	if len(f.drones) >= f.cfg.MaxDrones {
		return nil, fmt.Errorf("drone %s: the ground follows %d drones already (fleet.Config.MaxDrones)", id, f.cfg.MaxDrones)
	}
	d := newDrone(id)
	f.drones[id] = d
	f.order = append(f.order, id)
	return d, nil
}

func (f *Fleet) topicWarning(topic string, at time.Time) [][]byte {
	if len(topic) > 80 {
		topic = topic[:80] + "..."
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.warnLocked("", "topic", fmt.Errorf("topic %q is not fleet/<drone>/<kind> with a drone id of [A-Za-z0-9_-]", topic), at)
}

// warnLocked counts a malformed message and returns its warning (and the
// drone's new summary). f.mu is held.
func (f *Fleet) warnLocked(id, kind string, err error, at time.Time) [][]byte {
	f.malformed++
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	var w *Warning
	if d, ok := f.drones[id]; ok && id != "" {
		w = d.warning(kind)
		d.sum.Warnings++
	} else {
		if f.warnings[kind] == nil {
			f.warnings[kind] = &Warning{Type: TypeWarning, Topic: kind}
		}
		w = f.warnings[kind]
	}
	w.Count++
	w.Error, w.At = msg, MillisOf(at)
	return encode([]any{*w})
}

// Snapshot returns the whole picture, JSON-encoded (TypeSnapshot).
func (f *Fleet) Snapshot(now time.Time) []byte {
	f.mu.Lock()
	s := Snapshot{Type: TypeSnapshot, At: MillisOf(now), Drones: []DroneSnapshot{}, Warnings: []Warning{}}
	for _, id := range f.order {
		s.Drones = append(s.Drones, f.drones[id].snapshot())
	}
	for _, k := range slices.Sorted(maps.Keys(f.warnings)) {
		s.Warnings = append(s.Warnings, *f.warnings[k])
	}
	f.mu.Unlock()
	return encode([]any{s})[0]
}

// Frame returns drone's newest camera frame (a JPEG) and its sequence
// number; ok is false if none came.
func (f *Fleet) Frame(id string) (jpeg []byte, seq uint64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.drones[id]
	if d == nil || d.frame == nil {
		return nil, 0, false
	}
	return d.frame, d.cam.Seq, true
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Drones: len(f.drones), Messages: maps.Clone(f.messages), Malformed: f.malformed}
}

func encode(msgs []any) [][]byte {
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			panic(fmt.Sprintf("fleet: encode %T: %v", m, err)) // our own types of strings and numbers
		}
		out = append(out, b)
	}
	return out
}

// decode unmarshals a JSON object into v, with an error that says what is
// wrong with it.
func decode(payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not JSON: %w", err)
		}
		return err
	}
	return nil
}
