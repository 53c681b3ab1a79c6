package push

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push/pushtest"
	"github.com/skyswap/skyswap/handoff/strategy"
)

const pinned = "127.0.0.1:5000/flight:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestRun(t *testing.T) {
	m := brokertest.Start(t, nil)
	pub, priv := newKey(t)

	// Every answer starts with events Run must ignore: another command's
	// final event, and a refusal of a payload the drone could not parse.
	noise := []report.Event{
		{Command: "someone-else", Phase: report.PhaseResult, Outcome: "committed"},
		{Phase: report.PhaseRefused, Error: "command: malformed: not JSON"},
	}
	progress := []report.Event{
		{Phase: report.PhasePulling, To: pinned},
		{Phase: report.PhasePulled, To: pinned, Bytes: 2048},
		{Phase: "prepare", From: "flight-v1", To: "flight-v2"},
		{Phase: "synced"},
		{Phase: "cutover", Epoch: 3, Tick: 1200},
		{Phase: "probation"},
	}
	tests := []struct {
		name    string
		req     Request
		final   report.Event
		err     error  // nil: success
		outcome string // OutcomeError.Outcome
		msg     string // in the error
	}{
		{name: "committed", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseResult, Outcome: "committed", From: "flight-v1", To: "flight-v2", Epoch: 3}},
		{name: "first deploy", req: Request{Kind: command.KindUpdate, Image: pinned, Strategy: string(strategy.StopStart)},
			final: report.Event{Phase: report.PhaseDeployed, Outcome: "committed", To: "flight-v2"}},
		{name: "rollback", req: Request{Kind: command.KindRollback},
			final: report.Event{Phase: report.PhaseResult, Outcome: "committed", To: "flight-v1"}},
		{name: "recovered committed", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseRecovered, Outcome: "committed on recovery: the candidate was flying when the agent restarted (phase probation)"}},
		{name: "refused", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseRefused, Outcome: "refused", Error: "pull: 127.0.0.1:5000/flight:v2: not found"},
			err:   ErrFailed, outcome: "refused", msg: "pull: 127.0.0.1:5000/flight:v2: not found"},
		{name: "reverted", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseResult, Outcome: "reverted", Error: "candidate heartbeat lost in probation"},
			err:   ErrFailed, outcome: "reverted", msg: "reverted: candidate heartbeat lost in probation"},
		{name: "aborted", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseResult, Outcome: "aborted", Error: "no sync within 10s"},
			err:   ErrFailed, outcome: "aborted", msg: "aborted: no sync within 10s"},
		{name: "reverted without a reason", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseResult, Outcome: "reverted"},
			err:   ErrFailed, outcome: "reverted", msg: "control went back to the old one"},
		{name: "failed", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseFailed, Error: "start: no such device /dev/i2c-1"},
			err:   ErrFailed, outcome: "failed", msg: "failed: start: no such device"},
		{name: "recovered aborted", req: Request{Kind: command.KindUpdate, Image: pinned},
			final: report.Event{Phase: report.PhaseRecovered, Outcome: "aborted on recovery: the agent restarted in phase shadow; the old owner keeps flying"},
			err:   ErrFailed, msg: "the old owner keeps flying"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drone := "d" + string(rune('a'+i)) // a drone of its own: no retained state leaks between cases
			var want []report.Event
			pushtest.StartDrone(t, m, drone, pub, func(d *pushtest.Drone, c command.Command) []report.Event {
				for _, e := range noise {
					d.Event(e) // as is: no command id filled in
				}
				return append(append([]report.Event(nil), progress...), tt.final)
			})
			for _, e := range append(append([]report.Event(nil), progress...), tt.final) {
				e.Drone = drone
				want = append(want, e)
			}
			log, _ := testLogger(t)
			var streamed []report.Event
			var sentID string
			cfg := Config{Broker: m.URL, Drone: drone, Key: priv, Log: log,
				OnEvent: func(e report.Event) { streamed = append(streamed, e) },
				OnSent:  func(c command.Command, _ time.Time) { sentID = c.ID }}
			res, err := Run(ctxFor(t), cfg, tt.req)

			if tt.err == nil && err != nil || !errors.Is(err, tt.err) {
				t.Fatalf("Run: %v, want %v", err, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			var oe *OutcomeError
			if tt.outcome != "" && (!errors.As(err, &oe) || oe.Outcome() != tt.outcome) {
				t.Errorf("error %#v: want an *OutcomeError with outcome %q", err, tt.outcome)
			}
			if res.Command.ID == "" || res.Command.ID != sentID || res.Sent.IsZero() {
				t.Errorf("Result.Command.ID %q, OnSent saw %q, Sent %v", res.Command.ID, sentID, res.Sent)
			}
			if res.Command.Kind != tt.req.Kind || res.Command.App != DefaultApp || res.Command.Image != tt.req.Image ||
				res.Command.Strategy != tt.req.Strategy || res.Command.Drone != drone {
				t.Errorf("sent %+v for %+v", res.Command, tt.req)
			}
			strip := func(evs []report.Event) []report.Event {
				var out []report.Event
				for _, e := range evs {
					if e.Command != res.Command.ID || e.Time == "" {
						t.Errorf("event %+v: want command %s and a time", e, res.Command.ID)
					}
					e.Command, e.Time = "", ""
					out = append(out, e)
				}
				return out
			}
			if got := strip(res.Events); !reflect.DeepEqual(got, want) {
				t.Errorf("events:\n got %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(streamed, res.Events) {
				t.Errorf("OnEvent saw %+v, Result has %+v", streamed, res.Events)
			}
			if f := res.Final; f.Phase != tt.final.Phase || f.Outcome != tt.final.Outcome {
				t.Errorf("Final %+v, want %+v", f, tt.final)
			}
		})
	}
}

func TestRunVerifiedByDrone(t *testing.T) {
	m := brokertest.Start(t, nil)
	pub, priv := newKey(t)
	d := pushtest.StartDrone(t, m, "d1", pub, func(_ *pushtest.Drone, c command.Command) []report.Event {
		return []report.Event{{Phase: report.PhaseDeployed, Outcome: "committed"}}
	})
	res, err := Run(ctxFor(t), Config{Broker: m.URL, Drone: "d1", Key: priv, App: "camera", TTL: 90 * time.Second},
		Request{Kind: command.KindUpdate, Image: pinned, Strategy: string(strategy.Handoff), ID: "push-42"})
	if err != nil {
		t.Fatal(err)
	}
	got := d.Commands()
	if len(got) != 1 {
		t.Fatalf("the drone verified %d commands, want 1", len(got))
	}
	c := got[0]
	if c.ID != "push-42" || c.App != "camera" || c.Expires.Sub(c.Issued) != 90*time.Second ||
		c.KeyID != command.KeyID(pub) || !reflect.DeepEqual(c, res.Command) {
		t.Errorf("the drone got %+v; Result.Command %+v", c, res.Command)
	}
}

func TestRunRefusedSignature(t *testing.T) {
	m := brokertest.Start(t, nil)
	trusted, _ := newKey(t)
	_, other := newKey(t)
	pushtest.StartDrone(t, m, "d1", trusted, func(*pushtest.Drone, command.Command) []report.Event {
		t.Error("the drone acted on a command signed by an untrusted key")
		return nil
	})
	_, err := Run(ctxFor(t), Config{Broker: m.URL, Drone: "d1", Key: other},
		Request{Kind: command.KindUpdate, Image: pinned})
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "not trusted by this drone") {
		t.Errorf("Run: %v; want the drone's refusal with its reason", err)
	}
}

func TestRunTimeout(t *testing.T) {
	m := brokertest.Start(t, nil)
	pub, priv := newKey(t)
	tests := []struct {
		name  string
		state *report.State // retained before Run; nil: none
		msgs  []string      // in the error
		log   string        // in the log
	}{
		{"silent drone", &report.State{Drone: "d1", Online: true},
			[]string{"within 300ms", "last event was pulled", "may still be working", "fleet/d1/state"}, ""},
		{"offline drone", &report.State{Drone: "d2", Online: false},
			[]string{"the drone is offline", "delivers the command when it reconnects"}, "the drone is offline"},
		{"unknown drone", nil,
			[]string{"holds no state of drone d3", "check the drone id"}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drone := "d" + string(rune('1'+i))
			d := pushtest.StartDrone(t, m, drone, pub, func(d *pushtest.Drone, c command.Command) []report.Event {
				return []report.Event{{Phase: report.PhasePulling}, {Phase: report.PhasePulled}} // then nothing
			})
			if tt.state != nil {
				d.State(*tt.state)
			}
			log, buf := testLogger(t)
			res, err := Run(ctxFor(t), Config{Broker: m.URL, Drone: drone, Key: priv, Timeout: 300 * time.Millisecond, Log: log},
				Request{Kind: command.KindUpdate, Image: pinned})
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("Run: %v, want ErrTimeout", err)
			}
			for _, s := range tt.msgs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if !strings.Contains(buf.String(), tt.log) {
				t.Errorf("log does not say %q:\n%s", tt.log, buf)
			}
			if len(res.Events) != 2 || res.Final.Phase != "" {
				t.Errorf("Result events %+v, final %+v", res.Events, res.Final)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	m := brokertest.Start(t, nil)
	pub, priv := newKey(t)
	old := report.State{Drone: "d1", Online: true, Committed: map[string]string{"flight": "v1"}, Owner: map[string]string{"flight": "flight-v1"}}
	now := report.State{Drone: "d1", Online: true, Committed: map[string]string{"flight": "v2"}, Owner: map[string]string{"flight": "flight-v2"}}
	d := pushtest.StartDrone(t, m, "d1", pub, func(d *pushtest.Drone, c command.Command) []report.Event {
		if c.Kind != command.KindStatus || c.App != "" || c.Image != "" {
			t.Errorf("status command %+v", c)
		}
		d.State(now)
		return nil
	})
	d.State(old)
	st, err := Status(ctxFor(t), Config{Broker: m.URL, Drone: "d1", Key: priv})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, now) {
		t.Errorf("Status = %+v, want the fresh %+v, not the retained one", st, now)
	}

	// No agent: the retained (offline) state, and a timeout that says so.
	offline := report.State{Drone: "d2", Online: false}
	p := m.Peer(t, "")
	p.MustPublish(t, "fleet/d2/state", 1, true, []byte(`{"drone":"d2","online":false}`))
	st, err = Status(ctxFor(t), Config{Broker: m.URL, Drone: "d2", Key: priv, Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "offline") {
		t.Errorf("Status of an offline drone: %v", err)
	}
	if !reflect.DeepEqual(st, offline) {
		t.Errorf("Status = %+v, want the retained %+v", st, offline)
	}

	// An untrusted key: the refusal.
	_, other := newKey(t)
	if _, err := Status(ctxFor(t), Config{Broker: m.URL, Drone: "d1", Key: other}); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("Status with an untrusted key: %v", err)
	}
}

func TestRunBadInput(t *testing.T) {
	_, priv := newKey(t)
	// Nothing listens here: a check that passes would fail to connect.
	const nowhere = "tcp://127.0.0.1:1"
	good := Config{Broker: nowhere, Drone: "d1", Key: priv}
	with := func(f func(*Config)) Config { c := good; f(&c); return c }
	update := Request{Kind: command.KindUpdate, Image: pinned}
	tests := []struct {
		name  string
		cfg   Config
		req   Request
		field string // ConfigError.Field or FieldError.Field
	}{
		{"no broker", with(func(c *Config) { c.Broker = "" }), update, "Broker"},
		{"bad scheme", with(func(c *Config) { c.Broker = "http://127.0.0.1:1883" }), update, "Broker"},
		{"no port", with(func(c *Config) { c.Broker = "tcp://broker.local" }), update, "Broker"},
		{"plain and TLS nodes", with(func(c *Config) { c.Broker = "tcp://a:1883,ssl://b:8883" }), update, "Broker"},
		{"empty node", with(func(c *Config) { c.Broker = "tcp://a:1883,,tcp://b:1883" }), update, "Broker"},
		{"no drone", with(func(c *Config) { c.Drone = "" }), update, "Drone"},
		{"bad drone", with(func(c *Config) { c.Drone = "d1/#" }), update, "Drone"},
		{"no key", with(func(c *Config) { c.Key = nil }), update, "Key"},
		{"password without user", with(func(c *Config) { c.Password = "x" }), update, "Password"},
		{"CA with a plain broker", with(func(c *Config) { c.CAFile = "/etc/ssl/ca.pem" }), update, "CAFile"},
		{"cert without key", with(func(c *Config) { c.Broker = "ssl://127.0.0.1:8883"; c.CertFile = "c.pem" }), update, "KeyFile"},
		{"negative timeout", with(func(c *Config) { c.Timeout = -time.Second }), update, "Timeout"},
		{"ttl too long", with(func(c *Config) { c.TTL = time.Hour }), update, "expires"},
		{"ttl fraction", with(func(c *Config) { c.TTL = 1500 * time.Millisecond }), update, "expires"},
		{"bad app", with(func(c *Config) { c.App = "-x" }), update, "app"},
		{"tag only", good, Request{Kind: command.KindUpdate, Image: "127.0.0.1:5000/flight:v2"}, "image"},
		{"no image", good, Request{Kind: command.KindUpdate}, "image"},
		{"status", good, Request{Kind: command.KindStatus}, "kind"},
		{"no kind", good, Request{Image: pinned}, "kind"},
		{"bad strategy", good, Request{Kind: command.KindUpdate, Image: pinned, Strategy: "fast"}, "strategy"},
		{"bad id", good, Request{Kind: command.KindUpdate, Image: pinned, ID: "a b"}, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(ctxFor(t), tt.cfg, tt.req)
			var ce *ConfigError
			var fe *command.FieldError
			switch {
			case errors.As(err, &ce):
				if ce.Field != tt.field {
					t.Errorf("Run: %v: field %s, want %s", err, ce.Field, tt.field)
				}
			case errors.As(err, &fe):
				if fe.Field != tt.field {
					t.Errorf("Run: %v: field %s, want %s", err, fe.Field, tt.field)
				}
			default:
				t.Errorf("Run: %v, want an error about %s", err, tt.field)
			}
			if !res.Sent.IsZero() {
				t.Errorf("sent a bad command: %+v", res)
			}
			// Check finds the same, except a tag that Resolve would pin.
			cerr := Check(tt.cfg, tt.req)
			if tt.name == "tag only" {
				if cerr != nil {
					t.Errorf("Check with a tag: %v", cerr)
				}
			} else if cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Check: %v; Run: %v", cerr, err)
			}
		})
	}

	if _, err := Run(ctxFor(t), good, update); err == nil || !strings.Contains(err.Error(), "connect to tcp://127.0.0.1:1") {
		t.Errorf("Run with no broker: %v", err)
	}
}

func TestRunAuthenticated(t *testing.T) {
	pub, priv := newKey(t)
	committed := func(*pushtest.Drone, command.Command) []report.Event {
		return []report.Event{{Phase: report.PhaseResult, Outcome: "committed"}}
	}
	pw := brokertest.Start(t, &brokertest.Options{Drones: []string{"d1"}})
	tl := brokertest.Start(t, &brokertest.Options{Drones: []string{"d1"}, TLS: true})
	cert, key := tl.CertFiles(brokertest.GroundUser)
	tests := []struct {
		name string
		m    *brokertest.Mosquitto
		cfg  Config
		err  error // nil: committed
	}{
		{"password", pw, Config{Username: brokertest.GroundUser, Password: brokertest.Password(brokertest.GroundUser)}, nil},
		{"wrong password", pw, Config{Username: brokertest.GroundUser, Password: "guess"}, ErrNotAuthorized},
		{"client certificate", tl, Config{CAFile: tl.CAFile(), CertFile: cert, KeyFile: key}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pushtest.StartDrone(t, tt.m, "d1", pub, committed)
			cfg := tt.cfg
			cfg.Broker, cfg.Drone, cfg.Key = tt.m.URL, "d1", priv
			_, err := Run(ctxFor(t), cfg, Request{Kind: command.KindUpdate, Image: pinned})
			if tt.err == nil && err != nil || !errors.Is(err, tt.err) {
				t.Errorf("Run: %v, want %v", err, tt.err)
			}
		})
	}
}
