package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/skyswap/skyswap/controller/ground/fanout"
	"github.com/skyswap/skyswap/controller/ground/fleet"
	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/rollout"
	"github.com/skyswap/skyswap/controller/rollout/rollouttest"
)

var _ web.Rollouts = (*rollouttest.Fake)(nil)

// TestRolloutsAPI: a rollout starts from a spec in the flags' text forms,
// is read, listed, paused, resumed and canceled; each refusal has its
// status; the client says the same.
func TestRolloutsAPI(t *testing.T) {
	fake := &rollouttest.Fake{}
	e := &env{f: fleet.New(fleet.Config{}), hub: &fanout.Hub{}, op: &operator{}}
	e.srv = httptest.NewServer(web.New(web.Config{Rollouts: fake}, e.f, e.hub, e.op))
	t.Cleanup(e.srv.Close)
	c := &web.Client{URL: e.srv.URL + "/"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, body := e.do(t, "POST", "/api/rollouts", `{"image":"flight:v2","drones":["d1","d2"],"waves":"1,100%","max_failed":"5%"}`,
		jsonCT, "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("start: %d %s", res.StatusCode, body)
	}
	var rec rollout.Record
	if err := json.Unmarshal([]byte(body), &rec); err != nil || rec.State != rollout.Running || len(rec.Drones) != 2 {
		t.Fatalf("start: %s (%v)", body, err)
	}
	if s := fake.Specs()[0]; s.Waves.String() != "1,100%" || s.MaxFailed.String() != "5%" {
		t.Errorf("spec %+v", s)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"POST", "/api/rollouts", `{"image":"flight:v2"}`, 400, "no target"},
		{"POST", "/api/rollouts", `{"image":"flight:v2","all":true,"waves":"1,50%"}`, 400, "100%"},
		{"POST", "/api/rollouts", `{"image":"flight:v2","all":true,"bogus":1}`, 400, "bogus"},
		{"GET", "/api/rollouts/ro-nothere", "", 404, "no such rollout"},
		{"POST", "/api/rollouts/" + rec.ID + "/resume", `{}`, 409, "running"},
		{"POST", "/api/rollouts/" + rec.ID + "/explode", `{}`, 404, "pause, resume or cancel"},
		{"POST", "/api/rollouts/" + rec.ID + "/pause", `{}`, 200, `"state":"paused"`},
		{"POST", "/api/rollouts/" + rec.ID + "/resume", `{}`, 200, `"state":"running"`},
		{"GET", "/api/rollouts/" + rec.ID, "", 200, `"id":"` + rec.ID},
		{"GET", "/api/rollouts", "", 200, `"rollouts":[{"type":"rollout","id":"` + rec.ID},
	} {
		res, body := e.do(t, tc.method, tc.path, tc.body, jsonCT, "application/json")
		if res.StatusCode != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", tc.method, tc.path, tc.body, res.StatusCode, body, tc.code, tc.says)
		}
	}
	if got, err := c.ControlRollout(ctx, rec.ID, "cancel"); err != nil || got.State != rollout.Canceled {
		t.Errorf("client cancel: %+v, %v", got.State, err)
	}
	var ae *web.APIError
	if _, err := c.ControlRollout(ctx, rec.ID, "cancel"); !errors.As(err, &ae) || ae.Status != 409 {
		t.Errorf("cancel twice: %v, want a 409", err)
	}
	if views, err := c.Rollouts(ctx); err != nil || len(views) != 1 || views[0].Drones != nil || views[0].Total.Drones != 2 {
		t.Errorf("client list: %+v, %v", views, err)
	}

	// The feed: the snapshot, then each rollout with its drones.
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for i, want := range []string{`"type":"snapshot"`, `"type":"rollout","id":"` + rec.ID} {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(msg), want) || i == 1 && !strings.Contains(string(msg), `"drones":[{"id":"d1"`) {
			t.Errorf("feed message %d: %.200s, want %s", i, msg, want)
		}
	}
}
