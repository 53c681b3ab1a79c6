package swarm

import (
	"context"
	"slices"
	"testing"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/images/labels"
)

func TestFails(t *testing.T) {
	s := Sim{FailRate: 0.3, FailImage: "flight:v3", Seed: 7}
	n, reverts := 0, 0
	for i := range 2000 {
		d := Name("sim-", i)
		f, r := s.Fails(d, "reg/flight:v3@sha256:x")
		if f2, r2 := s.Fails(d, "reg/flight:v3@sha256:x"); f2 != f || r2 != r {
			t.Fatal("Fails is not repeatable")
		}
		if f {
			n++
			if r {
				reverts++
			}
		}
		if f, _ := s.Fails(d, "reg/flight:v2@sha256:x"); f {
			t.Fatalf("%s fails on v2, which FailImage spares", d)
		}
	}
	if n < 500 || n > 700 || reverts < n/3 || reverts > 2*n/3 {
		t.Errorf("%d of 2000 fail (%d revert), want about 600, half reverting", n, reverts)
	}
	if f, _ := (Sim{}).Fails("sim-0001", "x"); f {
		t.Error("the zero Sim fails")
	}
}

func TestImagesLookup(t *testing.T) {
	for _, tc := range []struct{ ref, app, version string }{
		{"127.0.0.1:5000/flight:v2@sha256:abc", "flight", "v2"},
		{"reg.local/team/camera:v10@sha256:abc", "camera", "v10"},
		{"flight@sha256:abc", "flight", ""},
	} {
		img, err := images{}.Lookup(context.Background(), tc.ref)
		if err != nil || img.Labels[labels.App] != tc.app || img.Labels[labels.Version] != tc.version {
			t.Errorf("Lookup(%s) = %v, %v; want app %s version %s", tc.ref, img.Labels, err, tc.app, tc.version)
		}
	}
}

func TestUpdaterPhases(t *testing.T) {
	fail := Sim{Phase: 1, FailRate: 1}
	var reverted, aborted string
	for i := range 20 {
		if _, rev := fail.Fails(Name("d", i), "img"); rev && reverted == "" {
			reverted = Name("d", i)
		} else if !rev && aborted == "" {
			aborted = Name("d", i)
		}
	}
	for _, tc := range []struct {
		drone   string
		sim     Sim
		outcome string
		phases  []string
	}{
		{"d1", Sim{Phase: 1}, report.OutcomeCommitted, []string{report.PhasePrepare, report.PhaseShadow, report.PhaseSynced,
			report.PhaseCutover, report.PhaseProbation, report.PhaseCommit}},
		{reverted, fail, report.OutcomeReverted, []string{report.PhasePrepare, report.PhaseShadow, report.PhaseSynced,
			report.PhaseCutover, report.PhaseProbation, report.PhaseRevert, report.PhaseDone}},
		{aborted, fail, report.OutcomeAborted, []string{report.PhasePrepare, report.PhaseShadow, report.PhaseAbort}},
	} {
		u := &updater{drone: tc.drone, sim: tc.sim}
		var got []string
		res, err := u.Run(context.Background(), coordinator.Plan{Owner: "a", Candidate: "b", Image: "img",
			OnEvent: func(e handoff.Event) { got = append(got, e.Phase) }})
		if res.Outcome != tc.outcome || !slices.Equal(got, tc.phases) || (err == nil) != (tc.outcome == report.OutcomeCommitted) {
			t.Errorf("%s: %s %v (%v), want %s %v", tc.drone, res.Outcome, got, err, tc.outcome, tc.phases)
		}
		if want := map[bool]string{true: "b", false: "a"}[tc.outcome == report.OutcomeCommitted]; res.Owner != want {
			t.Errorf("%s: owner %s after %s, want %s", tc.drone, res.Owner, res.Outcome, want)
		}
	}
}
