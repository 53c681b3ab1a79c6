package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/controller/ground/fanout"
	"github.com/skyswap/skyswap/controller/ground/fleet"
	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/rollout"
	"github.com/skyswap/skyswap/controller/rollout/rollouttest"
)

// finish moves a fake rollout's drones to statuses (one per drone) and
// its state to end, at the third read.
func finish(end rollout.State, statuses ...rollout.Status) func(*rollout.Record, int) {
	return func(rec *rollout.Record, n int) {
		for i := range rec.Drones {
			rec.Drones[i].Update.Status = rollout.Sent
			if n >= 2 {
				rec.Drones[i].Update.Status = statuses[i]
			}
		}
		if n >= 2 {
			rec.State = end
		}
	}
}

// TestRolloutCommand: dronectl rollout starts a rollout at the ground with
// the flags' spec, prints a line per wave as it changes, and exits with
// the status that says how it ended.
func TestRolloutCommand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		onGet  func(*rollout.Record, int)
		args   []string
		code   int
		stdout string
	}{
		{"every drone updated", finish(rollout.Completed, rollout.Done, rollout.Done), nil, 0,
			"wave=1/1 drones=2 done=2 failed=0 in_progress=0 unreached=0"},
		{"one unreached", finish(rollout.Completed, rollout.Done, rollout.Unreached), nil, exitPartial, "unreached=1"},
		{"rolled back", finish(rollout.RolledBk, rollout.Failed, rollout.Done), nil, exitAborted, "state=rolled_back"},
		{"canceled", finish(rollout.Canceled, rollout.Done, rollout.Pending), nil, exitCanceled, "state=canceled"},
		{"json", finish(rollout.Completed, rollout.Done, rollout.Done), []string{"-o", "json"}, 0, `"state": "completed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &rollouttest.Fake{OnGet: tc.onGet}
			srv := httptest.NewServer(web.New(web.Config{Rollouts: fake}, fleet.New(fleet.Config{}), &fanout.Hub{}, nil))
			defer srv.Close()
			args := append([]string{"rollout", "-ground", srv.URL, "-drones", "d1,d2", "-waves", "1,100%", "-max-failed", "5%",
				"-min-done", "10", "-on-abort", "rollback", "-soak", "30s", "flight:v2"}, tc.args...)
			code, stdout, stderr := dronectlEnv(t, time.Now, nil, args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nwant %q; stderr: %s", code, tc.code, stdout, tc.stdout, stderr)
			}
			spec := fake.Specs()[0]
			if strings.Join(spec.Drones, ",") != "d1,d2" || spec.Waves.String() != "1,100%" || spec.MaxFailed.String() != "5%" ||
				spec.MinDone != 10 || spec.OnAbort != rollout.Rollback || time.Duration(spec.Soak) != 30*time.Second || spec.Image != "flight:v2" {
				t.Errorf("spec sent %+v", spec)
			}
			if tc.args != nil {
				var rec rollout.Record
				if err := json.Unmarshal([]byte(stdout), &rec); err != nil {
					t.Errorf("-o json: %v", err)
				}
			}
		})
	}
}

func TestRolloutCommandErrors(t *testing.T) {
	fake := &rollouttest.Fake{}
	srv := httptest.NewServer(web.New(web.Config{Rollouts: fake}, fleet.New(fleet.Config{}), &fanout.Hub{}, nil))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"rollout", "flight:v2"}, 2, "-drones: no target"},
		{[]string{"rollout", "-drones", "all", "-waves", "1,50%", "flight:v2"}, 2, "-waves"},
		{[]string{"rollout", "-drones", "all", "-max-failed", "lots", "flight:v2"}, 2, "max-failed"},
		{[]string{"rollout", "-drones", "all", "-on-abort", "panic", "flight:v2"}, 2, "-on-abort"},
		{[]string{"rollout", "-drones", "all"}, 2, "one IMAGE"},
		{[]string{"rollout", "status"}, 2, "one rollout ID"},
		{[]string{"rollout", "status", "ro-nothere"}, 1, "no such rollout"},
		{[]string{"rollout", "pause", "ro-nothere"}, 1, "no such rollout"},
		{[]string{"rollout", "list", "-o", "yaml"}, 2, "-o"},
	} {
		args := append(tc.args, "-ground", srv.URL) // flags may follow the arguments
		code, _, stderr := dronectlEnv(t, time.Now, nil, args...)
		if code != tc.code || !strings.Contains(stderr, tc.says) {
			t.Errorf("%v: exit %d %s, want %d saying %q", tc.args, code, stderr, tc.code, tc.says)
		}
	}
	// Detached, then controlled and read by id.
	code, stdout, stderr := dronectlEnv(t, time.Now, nil, "rollout", "-ground", srv.URL, "-drones", "all", "-detach", "flight:v2")
	id := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(id, rollout.IDPrefix) {
		t.Fatalf("detach: exit %d %q %s", code, stdout, stderr)
	}
	for _, step := range []struct {
		what, says string
		code       int
	}{
		{"pause", "state=paused", 0}, {"resume", "state=running", 0}, {"status", "state=running", 0},
		{"cancel", "state=canceled", 0}, {"status", "state=canceled", exitCanceled}, {"list", "rollout=" + id + " state=canceled", 0},
	} {
		args := []string{"rollout", step.what, "-ground", srv.URL}
		if step.what != "list" {
			args = append(args, id)
		}
		code, stdout, stderr := dronectlEnv(t, time.Now, nil, args...)
		if code != step.code || !strings.Contains(stdout, step.says) {
			t.Errorf("rollout %s: exit %d %q %s, want %d saying %q", step.what, code, stdout, stderr, step.code, step.says)
		}
	}
}
