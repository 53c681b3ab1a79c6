package fleet

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/skyswap/skyswap/agent/report"
)

// Types of the page protocol's messages: every message is a JSON object
// whose "type" is one of these. Golden files in testdata pin the shapes.
const (
	// TypeSnapshot is the whole picture: the first message on a
	// connection, and again after the connection lagged (messages were
	// dropped), replacing everything the page holds.
	TypeSnapshot = "snapshot"
	// TypeTelemetry is one telemetry message of one drone, with a
	// cut-over marker when its epoch changed.
	TypeTelemetry = "telemetry"
	// TypeDrone is a drone's summary, after its state changed.
	TypeDrone = "drone"
	// TypeUpdate is one update's timeline, after it changed.
	TypeUpdate = "update"
	// TypeCamera says a drone sent a new camera frame; the page fetches
	// the JPEG itself.
	TypeCamera = "camera"
	// TypeWarning counts malformed messages of one drone and topic.
	TypeWarning = "warning"
)

// Telemetry is a TypeTelemetry message.
type Telemetry struct {
	Type      string           `json:"type"`
	Drone     string           `json:"drone"`
	At        Millis           `json:"at"` // when the ground received it
	Telemetry report.Telemetry `json:"t"`
	Marker    *Marker          `json:"marker,omitempty"`
}

// Marker is a cut-over as the telemetry shows it: the first message of
// an owner with a new epoch.
type Marker struct {
	At      Millis `json:"at"`
	Epoch   uint64 `json:"epoch"`
	From    string `json:"from,omitempty"` // the previous owner
	To      string `json:"to"`
	Version string `json:"version"`
}

// Drone is a drone's summary (TypeDrone), from its retained state.
type Drone struct {
	Type      string            `json:"type,omitempty"`
	ID        string            `json:"id"`
	Known     bool              `json:"known"` // a state came; false: only other messages so far
	Online    bool              `json:"online"`
	Committed map[string]string `json:"committed"` // app -> image
	Owner     map[string]string `json:"owner"`     // app -> instance
	Updating  string            `json:"updating,omitempty"`
	Warnings  int               `json:"warnings"` // malformed messages on its topics
}

// Update is one command's timeline (TypeUpdate).
type Update struct {
	Type    string  `json:"type,omitempty"`
	Drone   string  `json:"drone"`
	Command string  `json:"command"`
	Kind    string  `json:"kind,omitempty"`  // update, rollback: from the command, when the ground saw it
	Image   string  `json:"image,omitempty"` // the release it asks for
	SentAt  Millis  `json:"sent_at"`         // the ground saw the command (or, if not, its first event)
	Phases  []Phase `json:"phases"`
	Done    bool    `json:"done"`              // its final event came
	Outcome string  `json:"outcome,omitempty"` // committed, deployed, reverted, aborted, refused, failed...
	Reason  string  `json:"reason,omitempty"`  // the agent's, when it did not succeed

	sent time.Time // SentAt
}

// Phase is one event of an update.
type Phase struct {
	Phase   string `json:"phase"`
	AtMs    Millis `json:"at_ms"` // after the command, as the ground received both
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
}

// Camera is a TypeCamera message: frame Seq is at
// /api/drones/<drone>/camera.jpg until the next one.
type Camera struct {
	Type  string          `json:"type,omitempty"`
	Drone string          `json:"drone"`
	At    Millis          `json:"at"`
	Seq   uint64          `json:"seq"`   // frames received from the drone
	FPS   float64         `json:"fps"`   // frames a second, over the last 2 s
	Bytes int             `json:"bytes"` // the JPEG's size
	Meta  json.RawMessage `json:"meta,omitempty"`
	// Comment is the frame's comment when it is not JSON.
	Comment string `json:"comment,omitempty"`
}

// Warning is a TypeWarning message: Count malformed messages so far from
// Drone on Topic ("telemetry", "events", "state", "camera", "cmd"); Drone
// "" counts messages on topics that name no drone.
type Warning struct {
	Type  string `json:"type,omitempty"`
	Drone string `json:"drone"`
	Topic string `json:"topic"`
	Count int    `json:"count"`
	Error string `json:"error"` // the last one's
	At    Millis `json:"at"`
}

// DroneSnapshot is everything about one drone.
type DroneSnapshot struct {
	Drone
	Last     *Telemetry `json:"last,omitempty"` // the newest telemetry
	History  History    `json:"history"`
	Markers  []Marker   `json:"markers"`
	Updates  []Update   `json:"updates"` // newest first
	Camera   *Camera    `json:"camera,omitempty"`
	Problems []Warning  `json:"problems"`
}

// Snapshot is a TypeSnapshot message.
type Snapshot struct {
	Type     string          `json:"type"`
	At       Millis          `json:"at"`
	Drones   []DroneSnapshot `json:"drones"`   // in the order first seen
	Warnings []Warning       `json:"warnings"` // of topics that name no drone
}

// History is a drone's recent telemetry, column by column, oldest first:
// what the page's plots start from. A motor a sample did not have is
// null.
type History struct {
	At     []Millis      `json:"at"`
	Alt    []Num         `json:"alt"`
	Roll   []Num         `json:"roll"`
	Pitch  []Num         `json:"pitch"`
	Motors [Motors][]Num `json:"motors"`
}

// Motors is how many motor outputs the page plots (a quadcopter's).
const Motors = 4

// Millis is a time as Unix milliseconds, or a duration in milliseconds,
// in JSON with microsecond precision.
type Millis float64

// MillisOf returns t as Unix milliseconds.
func MillisOf(t time.Time) Millis { return Millis(float64(t.UnixMicro()) / 1e3) }

// MarshalJSON writes at most three decimals.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, math.Round(float64(m)*1e3)/1e3, 'f', -1, 64), nil
}

// Num is a plotted value: at most four decimals, NaN as null.
type Num float64

// MarshalJSON writes null for NaN.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(float64(n)*1e4)/1e4, 'f', -1, 64), nil
}
