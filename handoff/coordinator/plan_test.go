package coordinator

import (
	"strings"
	"testing"
)

func TestPlanDefaults(t *testing.T) {
	cases := []struct {
		name string
		plan Plan
		err  string // in the error; "" = valid
	}{
		{"minimal", Plan{Owner: "a", Candidate: "b", Image: "flight@sha256:1"}, ""},
		{"no owner", Plan{Candidate: "b", Image: "x"}, "distinct owner and candidate"},
		{"owner is candidate", Plan{Owner: "a", Candidate: "a", Image: "x"}, "distinct owner and candidate"},
		{"no image", Plan{Owner: "a", Candidate: "b"}, "the candidate's image"},
		{"unknown strategy", Plan{Owner: "a", Candidate: "b", Image: "x", Strategy: "yolo"}, "use handoff, stop-start, start-then-stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.plan.withDefaults()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Strategy != "handoff" || p.SyncTimeout != DefaultSyncTimeout || p.Lead != DefaultLead ||
				p.Probation != DefaultProbation || p.MaxTiltDeg != 30 || p.MaxDiverged != 20 {
				t.Fatalf("defaults %+v", p)
			}
		})
	}
}
