package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/command"
)

// State is where a rollout is.
type State string

// Rollout states. Running, Paused, Aborting and Canceling are live; the
// rest are final.
const (
	Running   State = "running"   // sending waves
	Paused    State = "paused"    // an operator paused it: nothing new is sent; drones in flight finish
	Aborting  State = "aborting"  // a wave went over max_failed: drones in flight finish, then roll back (on_abort rollback)
	Canceling State = "canceling" // an operator canceled it: drones in flight finish
	Completed State = "completed" // every wave ran
	Aborted   State = "aborted"   // stopped by max_failed (on_abort stop)
	RolledBk  State = "rolled_back"
	Canceled  State = "canceled"
)

// Live reports whether s is not final.
func (s State) Live() bool {
	return s == Running || s == Paused || s == Aborting || s == Canceling
}

// Status is where one command of a rollout is, for one drone.
type Status string

// Command statuses.
const (
	Pending   Status = "pending"   // not sent yet
	Sent      Status = "sent"      // published; no event of it yet
	Working   Status = "working"   // the drone reported a phase of it
	Done      Status = "done"      // it succeeded (report: committed or deployed)
	Skipped   Status = "skipped"   // the drone already ran the release: nothing sent
	Failed    Status = "failed"    // it ended otherwise (refused, aborted, reverted, failed), or the drone fell silent past the timeout
	Unreached Status = "unreached" // no answer before it expired: the drone was out of reach
)

// final reports whether s is an end.
func (s Status) final() bool {
	return s == Done || s == Skipped || s == Failed || s == Unreached
}

// inFlight reports whether a command in s may still come to an end.
func (s Status) inFlight() bool { return s == Sent || s == Working }

// Record is a rollout's durable record: what was asked, where each wave
// and drone is. The ground keeps it in a file and serves it (the API, the
// page, dronectl rollout status); golden files pin its JSON.
type Record struct {
	ID      string    `json:"id"`
	Spec    Spec      `json:"spec"` // Image pinned
	State   State     `json:"state"`
	Reason  string    `json:"reason,omitempty"` // why it aborted, or who canceled
	Created time.Time `json:"created"`
	Ended   time.Time `json:"ended,omitzero"`
	Wave    int       `json:"wave"` // the current wave, from 0
	Waves   []Wave    `json:"waves"`
	Drones  []Drone   `json:"drones"` // in rollout order, wave by wave
	Ignored Ignored   `json:"ignored"`
}

// Wave is one wave's progress; its drones are Record.Drones with its
// index.
type Wave struct {
	Size      int       `json:"size"`
	Started   time.Time `json:"started,omitzero"`
	Ended     time.Time `json:"ended,omitzero"` // every drone of it finished
	SoakUntil time.Time `json:"soak_until,omitzero"`
}

// Drone is one target: its update and, after an abort with rollback, its
// rollback.
type Drone struct {
	ID       string `json:"id"`
	Wave     int    `json:"wave"`
	Previous string `json:"previous,omitempty"` // the release it ran before (its state), what a rollback returns to
	Update   Cmd    `json:"update"`
	Rollback *Cmd   `json:"rollback,omitempty"`
}

// Cmd is one signed command of the rollout to one drone.
type Cmd struct {
	ID      string    `json:"id,omitempty"` // CommandID
	Status  Status    `json:"status"`
	Sent    time.Time `json:"sent,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	// Published is when the broker acknowledged it (MQTT PUBACK); zero
	// while it is queued. A ground killed in between sends it again.
	Published time.Time `json:"published,omitzero"`
	Phase     string    `json:"phase,omitempty"`   // the newest the drone reported (report.Phase*)
	Outcome   string    `json:"outcome,omitempty"` // how it ended, as push words it (committed, reverted, refused...)
	Error     string    `json:"error,omitempty"`
	Ended     time.Time `json:"ended,omitzero"`
}

// Ignored counts what the rollout ignored: the bad input it was given.
type Ignored struct {
	// WrongDrone: events of its commands from another drone's topic, or
	// naming another drone than their topic (a drone answering for
	// another's command).
	WrongDrone uint64 `json:"wrong_drone"`
	// Late: events of a command that had already ended (a QoS 1
	// redelivery refused as a replay, a refusal after the expiry).
	Late uint64 `json:"late"`
}

// Counts is how a wave's (or the rollout's) drones stand.
type Counts struct {
	Drones     int `json:"drones"`
	Done       int `json:"done"` // Done and Skipped
	Failed     int `json:"failed"`
	InProgress int `json:"in_progress"` // sent, working
	Unreached  int `json:"unreached"`
	Pending    int `json:"pending"`
	RolledBack int `json:"rolled_back,omitempty"`
	// RollbackFailed: rollbacks that did not succeed (or reach).
	RollbackFailed int `json:"rollback_failed,omitempty"`
}

// Counts returns wave's counts; wave -1 is the whole rollout.
func (r *Record) Counts(wave int) Counts {
	var c Counts
	for i := range r.Drones {
		d := &r.Drones[i]
		if wave >= 0 && d.Wave != wave {
			continue
		}
		c.Drones++
		switch d.Update.Status {
		case Done, Skipped:
			c.Done++
		case Failed:
			c.Failed++
		case Unreached:
			c.Unreached++
		case Pending:
			c.Pending++
		default:
			c.InProgress++
		}
		if d.Rollback != nil {
			switch {
			case d.Rollback.Status == Done:
				c.RolledBack++
			case d.Rollback.Status.final():
				c.RollbackFailed++
			}
		}
	}
	return c
}

// Command kinds in a command id.
const (
	kindUpdate   = "u"
	kindRollback = "r"
)

// IDPrefix starts every rollout's id (and so every id of its commands).
const IDPrefix = "ro-"

// CommandID is the id of the rollout's command of kind ("u" update, "r"
// rollback) to drone: "<rollout>.<kind>.<drone>", or with the drone's id
// hashed when that would pass the command id limit. The same rollout,
// kind and drone give the same id, so a command sent twice is refused by
// the drone as a replay (command.Seen).
func CommandID(rollout, kind, drone string) string {
	id := rollout + "." + kind + "." + drone
	if len(id) <= command.MaxIDLen {
		return id
	}
	h := sha256.Sum256([]byte(drone))
	return rollout + "." + kind + ".h" + hex.EncodeToString(h[:8])
}

// rolloutOf returns the rollout id a command id names, if it has the
// form of one of a rollout's.
func rolloutOf(commandID string) (string, bool) {
	id, rest, ok := strings.Cut(commandID, ".")
	if !ok || !strings.HasPrefix(id, IDPrefix) {
		return "", false
	}
	kind, _, ok := strings.Cut(rest, ".")
	return id, ok && (kind == kindUpdate || kind == kindRollback)
}
