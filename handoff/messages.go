package handoff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Role is a participant's part in the hand-over.
type Role string

// Roles.
const (
	RoleOwner     Role = "owner"     // drives the actuators
	RoleCandidate Role = "candidate" // shadows, waiting to take over
	RoleStandby   Role = "standby"   // former owner, shadows the new one, takes back if it falls silent
	RoleRetired   Role = "retired"   // told to exit
)

// Frame is one control tick of the owner, published right after its write.
type Frame struct {
	Schema   string `json:"schema"`   // state schema id, e.g. "flight.state/1"
	Instance string `json:"instance"` // the publishing owner
	Version  string `json:"version"`  // its app version
	Epoch    uint64 `json:"epoch"`    // its lease epoch
	Seq      uint64 `json:"seq"`      // per-instance sequence, from 1; a gap means re-hydrate
	Tick     int64  `json:"tick"`     // tick number on the shared grid
	TickNs   int64  `json:"tick_ns"`  // tick time, CLOCK_MONOTONIC ns
	// Handover, when set, says the owner stops before Handover.Tick and who
	// takes over.
	Handover *Handover `json:"handover,omitempty"`
	// State is the app's full controller state after this tick.
	State json.RawMessage `json:"state"`
	// Sample is the sensor sample the tick used.
	Sample json.RawMessage `json:"sample"`
	// Out are the actuator outputs written at this tick.
	Out []float64 `json:"out"`
	// Health is a small app-independent summary for the coordinator.
	Health Health `json:"health"`
}

// Health is what the coordinator checks in probation.
type Health struct {
	RollDeg  float64 `json:"roll_deg"`
	PitchDeg float64 `json:"pitch_deg"`
	AltM     float64 `json:"alt_m"`
}

// Handover is the owner's commitment to stop before Tick.
type Handover struct {
	Tick     int64  `json:"tick"`     // first tick the new owner writes
	To       string `json:"to"`       // the instance that takes over
	Epoch    uint64 `json:"epoch"`    // its epoch
	Fallback uint64 `json:"fallback"` // the epoch the standby takes back with
}

// ErrMalformed is the class of errors for a message that cannot be used.
var ErrMalformed = errors.New("handoff: malformed message")

// DecodeFrame parses and validates a frame.
func DecodeFrame(data []byte) (*Frame, error) {
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: frame: %v", ErrMalformed, err)
	}
	switch {
	case f.Schema == "" || f.Instance == "":
		return nil, fmt.Errorf("%w: frame without schema or instance", ErrMalformed)
	case f.Epoch == 0 || f.Seq == 0 || f.Tick <= 0:
		return nil, fmt.Errorf("%w: frame with zero epoch, seq or tick", ErrMalformed)
	case missing(f.State) || missing(f.Sample) || len(f.Out) == 0:
		return nil, fmt.Errorf("%w: frame without state, sample or outputs", ErrMalformed)
	case f.Handover != nil && (f.Handover.To == "" || f.Handover.Tick <= f.Tick || f.Handover.Epoch <= f.Epoch || f.Handover.Fallback <= f.Handover.Epoch):
		return nil, fmt.Errorf("%w: frame with an inconsistent handover", ErrMalformed)
	}
	return &f, nil
}

// missing reports whether a raw JSON value is absent or null.
func missing(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// Status is a participant's periodic report.
type Status struct {
	Instance string   `json:"instance"`
	Version  string   `json:"version"`
	Role     Role     `json:"role"`
	Epoch    uint64   `json:"epoch"`   // the epoch it writes with (owner) or 0
	Accepts  []string `json:"accepts"` // state schemas it can hydrate from
	Synced   bool     `json:"synced"`  // shadow output matched for SyncTicks in a row, fresh
	Streak   int      `json:"streak"`  // current run of matching ticks
	LastTick int64    `json:"last_tick"`
	LagMs    float64  `json:"lag_ms"`   // how late the newest frame arrived
	Diverged uint64   `json:"diverged"` // ticks whose replay did not match
	Gaps     uint64   `json:"gaps"`     // sequence gaps seen (each means re-hydrate)
	// Malformed counts frames and control messages ignored as malformed;
	// Incompatible counts frames of a schema it does not accept.
	Malformed    uint64 `json:"malformed"`
	Incompatible uint64 `json:"incompatible"`
	// Stale counts frames from an epoch older than the newest seen: a
	// fenced instance that has not noticed yet.
	Stale     uint64 `json:"stale"`
	TakenBack bool   `json:"taken_back"` // it took the hardware back as standby
	// Dropped counts frames of its own it dropped, the NATS path being
	// too slow to take them (owner).
	Dropped uint64 `json:"dropped,omitempty"`
	T       int64  `json:"t"` // when sent, CLOCK_MONOTONIC ns
}

// Control is a request to one participant.
type Control struct {
	// Op is "expect" (to a candidate or standby: the owner of epoch From
	// will be asked for Handover, to this instance), "handover" (to the
	// owner: commit to Handover) or "retire" (to a standby: exit).
	Op       string    `json:"op"`
	Handover *Handover `json:"handover,omitempty"`
	From     uint64    `json:"from,omitempty"` // expect: the epoch handing over
}

// Reply answers a Control.
type Reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Event is a phase change of a hand-over, as the coordinator reports it.
type Event struct {
	App      string `json:"app"`
	Phase    string `json:"phase"` // agent/report's Phase* constants
	Strategy string `json:"strategy"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
	Tick     int64  `json:"tick,omitempty"`
	T        int64  `json:"t"`    // CLOCK_MONOTONIC ns
	Wall     string `json:"wall"` // RFC 3339, for people
	Error    string `json:"error,omitempty"`
}

// Subjects for app.
type Subjects struct{ app string }

// SubjectsFor returns the subject names of app.
func SubjectsFor(app string) Subjects { return Subjects{app} }

// Frames is the state frame subject.
func (s Subjects) Frames() string { return "skyswap." + s.app + ".frames" }

// Status is a participant's status subject ("*" for all).
func (s Subjects) Status(instance string) string { return "skyswap." + s.app + ".status." + instance }

// Control is a participant's request subject.
func (s Subjects) Control(instance string) string { return "skyswap." + s.app + ".ctl." + instance }

// Camera is the subject of the owner's camera frames: one JPEG per
// message (false colour; a COM segment carries the frame's metadata).
func (s Subjects) Camera() string { return "skyswap." + s.app + ".camera" }

// Events is the coordinator's event subject.
func (s Subjects) Events() string { return "skyswap." + s.app + ".events" }

// Stream is the JetStream stream name holding the frames.
func (s Subjects) Stream() string { return "SKYSWAP_" + s.app }

// JSONBuffer encodes values as JSON (encoding/json's bytes, as
// json.Marshal gives them) into a buffer it reuses, so that a control
// loop's encoding allocates nothing and the collector, which can hold a
// real-time thread up, seldom runs. The zero value is ready; the bytes
// Encode returns are valid until its next call.
type JSONBuffer struct {
	b   bytes.Buffer
	enc *json.Encoder
}

// Encode encodes v (pass a pointer: a value copied into the interface
// allocates).
func (j *JSONBuffer) Encode(v any) ([]byte, error) {
	if j.enc == nil {
		j.enc = json.NewEncoder(&j.b)
	}
	j.b.Reset()
	if err := j.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(j.b.Bytes(), []byte("\n")), nil
}
