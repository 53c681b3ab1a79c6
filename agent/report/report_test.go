package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestWireGolden pins the JSON the ground reads: a change to a field's name
// or shape breaks dronectl, the controller and the ground station, so it
// must show up here first (go test -update rewrites the files).
func TestWireGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		v    any
	}{
		{"event.golden.json", Event{Drone: "d1", Command: "c-7", App: "flight", Phase: PhaseResult, Outcome: "committed",
			From: "flight-aaaa", To: "flight-bbbb", Epoch: 2, Tick: 4221327, Time: "2026-11-22T01:58:22.452767119Z"}},
		{"event-refused.golden.json", Event{Drone: "d1", Phase: PhaseRefused, Error: "command: malformed: JSON ends early",
			Time: "2026-11-22T01:58:22Z"}},
		{"state.golden.json", State{Drone: "d1", Online: true, Committed: map[string]string{"flight": "reg/flight@sha256:ab"},
			Owner: map[string]string{"flight": "flight-bbbb"}, Labels: map[string]string{"site": "field-a", "role": "survey"}}},
		{"telemetry.golden.json", Telemetry{Drone: "d1", App: "flight", Instance: "flight-bbbb", Version: "v2", Epoch: 2,
			Tick: 4221400, RollDeg: 0.25, PitchDeg: -0.5, AltM: 2.01, Motors: []float64{0.63, 0.64, 0.62, 0.65},
			Time: "2026-11-22T01:58:22.5Z"}},
	} {
		got, err := json.MarshalIndent(tc.v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", tc.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n%s\nwant:\n%s", tc.file, got, want)
		}
	}
}

func TestFinalAndSucceeded(t *testing.T) {
	for _, tc := range []struct {
		e                Event
		final, succeeded bool
	}{
		{Event{Phase: PhasePulling}, false, false},
		{Event{Phase: "cutover"}, false, false},
		{Event{Phase: PhaseDeployed, Outcome: "committed"}, true, true},
		{Event{Phase: PhaseResult, Outcome: "committed"}, true, true},
		{Event{Phase: PhaseResult, Outcome: "reverted"}, true, false},
		{Event{Phase: PhaseRefused}, true, false},
		{Event{Phase: PhaseFailed}, true, false},
	} {
		if tc.e.Final() != tc.final || tc.e.Succeeded() != tc.succeeded {
			t.Errorf("%+v: final %v succeeded %v, want %v %v", tc.e, tc.e.Final(), tc.e.Succeeded(), tc.final, tc.succeeded)
		}
	}
}
