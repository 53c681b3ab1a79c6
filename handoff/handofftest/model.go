package handofftest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/skyswap/skyswap/handoff"
)

// Schema is the state schema id of the trivial control law.
const Schema = "handofftest.state/1"

// State is the controller state of the trivial control law.
type State struct {
	X float64 `json:"x"`
}

// Sample is one sensor sample.
type Sample struct {
	U float64 `json:"u"`
}

// SampleAt is the sensor reading at tick: every instance reads the same
// sensor, so the sample is a function of the tick alone.
func SampleAt(tick int64) Sample { return Sample{U: float64(tick%100) / 8} }

// Step runs one tick of the control law: it returns the outputs X+U and
// steps s to X+1.
func Step(s *State, in Sample) []float64 {
	out := []float64{s.X + in.U}
	s.X++
	return out
}

// Model is handoff.Model for the trivial control law. Bias is added to every
// replayed output: a non-zero Bias larger than the tolerance makes a
// participant whose control law disagrees with the owner's.
type Model struct {
	Bias float64
}

var _ handoff.Model = Model{}

// Replay implements handoff.Model.
func (m Model) Replay(state, sample json.RawMessage) ([]float64, error) {
	var s State
	if err := json.Unmarshal(state, &s); err != nil {
		return nil, fmt.Errorf("handofftest: state: %w", err)
	}
	var in Sample
	if err := json.Unmarshal(sample, &in); err != nil {
		return nil, fmt.Errorf("handofftest: sample: %w", err)
	}
	out := Step(&s, in)
	out[0] += m.Bias
	return out, nil
}

// Frame returns the well-formed frame an owner on the trivial law publishes
// at tick when it entered the tick with state x: Out is x+SampleAt(tick),
// State is x+1. h may be nil.
func Frame(instance string, epoch, seq uint64, tick int64, period time.Duration, x float64, h *handoff.Handover) handoff.Frame {
	s := State{X: x}
	in := SampleAt(tick)
	out := Step(&s, in)
	state, _ := json.Marshal(s)
	sample, _ := json.Marshal(in)
	return handoff.Frame{
		Schema: Schema, Instance: instance, Version: "test", Epoch: epoch, Seq: seq,
		Tick: tick, TickNs: tick * int64(period), Handover: h,
		State: state, Sample: sample, Out: out,
	}
}
