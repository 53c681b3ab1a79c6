// Package strategy names the ways an update may replace a running app
// instance. It imports nothing, so the signed command (agent/command), the
// image labels (images/build) and the coordinator share one list without
// linking NATS into the tools that only name a strategy.
package strategy

import (
	"fmt"
	"slices"
	"strings"
)

// Strategy is how an update replaces the running instance.
type Strategy string

// Strategies.
const (
	// Handoff streams state to a shadowing candidate and cuts over at a
	// tick boundary (the default).
	Handoff Strategy = "handoff"
	// StopStart stops the old instance, then starts the new one with no
	// state (what Mender, Kanto and Torizon do).
	StopStart Strategy = "stop-start"
	// StartThenStop starts the new instance with no state beside the old
	// one, then stops the old (balena's hand-over).
	StartThenStop Strategy = "start-then-stop"
)

// Default is the strategy of an image that declares none.
const Default = Handoff

// All are the strategies, in the order messages list them.
var All = []Strategy{Handoff, StopStart, StartThenStop}

// Check returns an error naming the strategies unless s is one of them.
func Check(s string) error {
	if slices.Contains(All, Strategy(s)) {
		return nil
	}
	return fmt.Errorf("unknown strategy %.100q: use %s", s, List())
}

// List is the strategies as text: "handoff, stop-start, start-then-stop".
func List() string {
	names := make([]string, len(All))
	for i, s := range All {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
