// Package handofftest provides fakes for testing package handoff in one
// process: a trivial control law (Model, State, Sample, Step), a fenced
// ledger of actuator writes (Ledger), a control loop that drives a
// Participant on the CLOCK_MONOTONIC tick grid (Loop), an instance that owns
// a NATS connection, a participant and a loop (Instance), a fake Runtime for
// the Coordinator, and an embedded server with connection helpers (Bus).
//
// The control law: the state is {"x": X}, the sensor sample {"u": U}; a tick
// outputs [X+U] and steps X to X+1. It is deterministic, so a participant
// that replays the owner's previous state on the owner's sample reproduces
// the owner's output exactly.
package handofftest
