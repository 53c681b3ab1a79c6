// Package report is the wire format a drone reports to the ground on
// MQTT: the update events on fleet/<drone>/events and the retained state on
// fleet/<drone>/state. The agent writes them; the ground (dronectl, the
// controller, the ground station) reads them. It imports nothing, so the
// ground side does not pull in the agent's containerd client.
package report

// Phases of an update, as Event.Phase names them: the agent's own, and the
// coordinator's (handoff/coordinator), which the agent forwards as they
// come. This is the one list of them: the agent, the coordinator and the
// ground all read it.
const (
	PhaseRefused   = "refused"   // the command (or the update) was not acted on; Error says why
	PhasePulling   = "pulling"   // the image pull started
	PhasePulled    = "pulled"    // the image is here; Bytes were fetched
	PhaseDeployed  = "deployed"  // a first release was started cold and flies
	PhaseFailed    = "failed"    // a first deploy could not start
	PhaseResult    = "result"    // an update's outcome (Outcome)
	PhaseRetry     = "retry"     // a safe abort for timing (the owner flew on untouched): the agent tries again; Error says why
	PhaseRecovered = "recovered" // the agent restarted into a safe state (Outcome, To kept)

	// The coordinator's, in the order a hand-over passes them; it ends in
	// commit, done (after a revert), abort or refused.
	PhasePrepare   = "prepare"   // the candidate is starting
	PhaseShadow    = "shadow"    // it replays the owner's frames
	PhaseSynced    = "synced"    // its replays match; the cut-over is next
	PhaseCutover   = "cutover"   // the candidate drives the motors
	PhaseProbation = "probation" // the old owner stands by to take back
	PhaseCommit    = "commit"    // the old owner retired: done
	PhaseRevert    = "revert"    // the old owner drives again; the candidate is stopped
	PhaseDone      = "done"      // a revert finished
	PhaseAbort     = "abort"     // stopped before the cut-over; the owner flew on untouched
)

// Outcomes of an update (Event.Outcome).
const (
	OutcomeCommitted = "committed" // the new release owns the hardware; the old instance is gone
	OutcomeReverted  = "reverted"  // the candidate took over, then control went back to the old owner
	OutcomeAborted   = "aborted"   // stopped before the cut-over; the owner was never touched
	OutcomeRefused   = "refused"   // refused before the candidate started
)

// Event is one message on fleet/<drone>/events.
type Event struct {
	Drone   string `json:"drone"`
	Command string `json:"command,omitempty"` // the command's id, when known
	App     string `json:"app,omitempty"`
	// Phase is the agent's (Phase* constants) or the coordinator's.
	Phase   string `json:"phase"`
	Outcome string `json:"outcome,omitempty"` // Outcome* constants
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Tick    int64  `json:"tick,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"` // pulled
	Error   string `json:"error,omitempty"`
	Time    string `json:"time"` // RFC 3339, UTC, nanoseconds
}

// Final reports whether e ends the command it belongs to: after it the
// agent does nothing more for that command.
func (e Event) Final() bool {
	switch e.Phase {
	case PhaseRefused, PhaseDeployed, PhaseFailed, PhaseResult:
		return true
	}
	return false
}

// Succeeded reports whether e is a final event that left the requested
// release flying: a first deploy, or an update committed.
func (e Event) Succeeded() bool {
	return e.Phase == PhaseDeployed || (e.Phase == PhaseResult && e.Outcome == "committed")
}

// State is the retained message on fleet/<drone>/state. The last will is
// the same shape with Online false and nothing else.
type State struct {
	Drone     string            `json:"drone"`
	Online    bool              `json:"online"`
	Committed map[string]string `json:"committed"` // app -> image
	Owner     map[string]string `json:"owner"`     // app -> instance
	Updating  string            `json:"updating,omitempty"`
	// Labels are what the drone says about itself (AGENT_LABELS: site,
	// role...), for the ground to pick drones by (dronectl rollout
	// -select). nil: none.
	Labels map[string]string `json:"labels,omitempty"`
}

// Telemetry is one message on fleet/<drone>/telemetry (QoS 0, about 20 Hz):
// the latest state frame of the app's owner, reduced to what a ground
// station plots.
type Telemetry struct {
	Drone    string    `json:"drone"`
	App      string    `json:"app"`
	Instance string    `json:"instance"` // the owner that published the frame
	Version  string    `json:"version"`  // its app version
	Epoch    uint64    `json:"epoch"`    // its lease epoch
	Tick     int64     `json:"tick"`     // the frame's control tick
	RollDeg  float64   `json:"roll_deg"`
	PitchDeg float64   `json:"pitch_deg"`
	AltM     float64   `json:"alt_m"`
	Motors   []float64 `json:"motors"`   // outputs written at Tick, 0..1
	Handover bool      `json:"handover"` // the owner has announced a cut-over
	Time     string    `json:"time"`     // when the agent relayed it, RFC 3339 UTC
	Dropped  uint64    `json:"dropped"`  // frames that could not be decoded since the relay started
}
