package rollout

import (
	"encoding/json"
	"time"
)

// TypeView is the type of View in the ground page's protocol.
const TypeView = "rollout"

// View is a rollout as the ground's page shows it, a page message
// ({"type":"rollout",...}): its state, each wave's counts and each
// drone's outcome. A golden file pins it.
type View struct {
	Type      string      `json:"type"`
	ID        string      `json:"id"`
	Image     string      `json:"image"`
	State     State       `json:"state"`
	Reason    string      `json:"reason,omitempty"`
	Created   time.Time   `json:"created"`
	Ended     time.Time   `json:"ended,omitzero"`
	Wave      int         `json:"wave"` // the current wave, from 0
	MaxFailed string      `json:"max_failed"`
	MinDone   int         `json:"min_done"`
	OnAbort   OnAbort     `json:"on_abort"`
	Total     Counts      `json:"total"`
	Waves     []WaveView  `json:"waves"`
	Drones    []DroneView `json:"drones,omitempty"` // nil in a list of rollouts
	Ignored   Ignored     `json:"ignored"`
}

// WaveView is one wave in a View.
type WaveView struct {
	Counts
	Started   time.Time `json:"started,omitzero"`
	Ended     time.Time `json:"ended,omitzero"`
	SoakUntil time.Time `json:"soak_until,omitzero"`
}

// DroneView is one drone in a View.
type DroneView struct {
	ID       string `json:"id"`
	Wave     int    `json:"wave"`
	Status   Status `json:"status"`
	Phase    string `json:"phase,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Error    string `json:"error,omitempty"`
	Rollback Status `json:"rollback,omitempty"` // its rollback's status, if one was sent
}

// View returns rec as the page shows it; with drones, each drone's too.
func (rec Record) View(drones bool) View {
	v := View{Type: TypeView, ID: rec.ID, Image: rec.Spec.Image, State: rec.State, Reason: rec.Reason, Created: rec.Created,
		Ended: rec.Ended, Wave: rec.Wave, MaxFailed: rec.Spec.MaxFailed.String(), MinDone: rec.Spec.minDone(),
		OnAbort: rec.Spec.OnAbort, Total: rec.Counts(-1), Waves: make([]WaveView, len(rec.Waves)), Ignored: rec.Ignored}
	if v.OnAbort == "" {
		v.OnAbort = Stop
	}
	for i, w := range rec.Waves {
		v.Waves[i] = WaveView{Counts: rec.Counts(i), Started: w.Started, Ended: w.Ended, SoakUntil: w.SoakUntil}
	}
	if !drones {
		return v
	}
	v.Drones = make([]DroneView, len(rec.Drones))
	for i, d := range rec.Drones {
		v.Drones[i] = DroneView{ID: d.ID, Wave: d.Wave, Status: d.Update.Status, Phase: d.Update.Phase,
			Outcome: d.Update.Outcome, Error: d.Update.Error}
		if d.Rollback != nil {
			v.Drones[i].Rollback = d.Rollback.Status
		}
	}
	return v
}

// PageMessage is rec's View with its drones, JSON-encoded.
func (rec Record) PageMessage() []byte {
	b, err := json.Marshal(rec.View(true))
	if err != nil {
		panic("rollout: encode a view: " + err.Error()) // strings, numbers and times
	}
	return b
}
