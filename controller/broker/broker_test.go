package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	agentbroker "github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/controller/broker"
)

// wait bounds every expected message: generous for a loaded 2-core
// machine; on loopback they take milliseconds.
const wait = 10 * time.Second

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// brokerLog keeps the brokers' log and prints it if the test fails.
func brokerLog(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("broker log:\n%s", buf.String())
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Log == nil {
		cfg.Log = brokerLog(t)
	}
	b, err := broker.Start(ctxFor(t, time.Minute), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// agent connects the drone agent's own MQTT client (agent/broker) as
// drone d1 to url; commands arrive on the channel.
func agent(t *testing.T, url string) (*agentbroker.Client, chan []byte) {
	t.Helper()
	cmds := make(chan []byte, 16)
	c, err := agentbroker.Connect(ctxFor(t, wait), agentbroker.Config{URL: url, Drone: "d1",
		Log: slog.New(slog.DiscardHandler)}, func(p []byte) { cmds <- p })
	if err != nil {
		t.Fatalf("the agent's client cannot connect to the embedded broker: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, cmds
}

func peer(t *testing.T, url string) *brokertest.Peer {
	t.Helper()
	p, err := brokertest.Dial(url, brokertest.PeerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func next(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(wait):
		t.Fatalf("nothing within %s", wait)
		return nil
	}
}

// retainedState is what a new subscriber (as o) gets first on d1's state
// topic: the retained message. nats-server files a retained message a
// moment after it acknowledges it (a consumer of its own stream fills the
// map subscriptions read), so a subscription that comes too soon gets
// nothing: try new ones for a while.
func retainedState(t *testing.T, url string, o brokertest.PeerOptions) brokertest.Message {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		p, err := brokertest.Dial(url, o)
		if err != nil {
			t.Fatal(err)
		}
		ch := p.MustSubscribe(t, agentbroker.Topics("d1").State, 1)
		select {
		case m := <-ch:
			p.Close()
			return m
		case <-time.After(200 * time.Millisecond):
			p.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retained state on %s within %s", agentbroker.Topics("d1").State, wait)
		}
	}
}

// TestAgentClient runs the drone agent's MQTT client against the embedded
// broker: retained online state, QoS 1 commands, QoS 1 events, QoS 0
// telemetry.
func TestAgentClient(t *testing.T) {
	b := start(t, broker.Config{})
	c, cmds := agent(t, b.URL())
	tp := agentbroker.Topics("d1")
	if m := retainedState(t, b.URL(), brokertest.PeerOptions{}); !m.Retained || !bytes.Equal(m.Payload, agentbroker.DefaultOnline("d1")) {
		t.Fatalf("state after Connect: %+v, want the retained online state", m)
	}
	ground := peer(t, b.URL())
	all := ground.MustSubscribe(t, "fleet/d1/+", 1)
	brokertest.Receive(t, all, wait) // the retained state

	ground.MustPublish(t, tp.Cmd, 1, false, []byte(`{"id":"c1"}`))
	if got := next(t, cmds); string(got) != `{"id":"c1"}` {
		t.Fatalf("command %q", got)
	}
	if err := c.PublishEvent(ctxFor(t, wait), []byte(`{"phase":"pulled"}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishTelemetry([]byte(`{"alt_m":2}`)); err != nil {
		t.Fatal(err)
	}
	got := map[string]brokertest.Message{}
	brokertest.ReceiveUntil(t, all, wait, func(m brokertest.Message) bool {
		if m.Topic == tp.Events || m.Topic == tp.Telemetry {
			got[m.Topic] = m
		}
		return len(got) == 2
	})
	if m := got[tp.Events]; string(m.Payload) != `{"phase":"pulled"}` || m.QoS != 1 {
		t.Errorf("event %+v", m)
	}
	if m := got[tp.Telemetry]; string(m.Payload) != `{"alt_m":2}` || m.QoS != 0 {
		t.Errorf("telemetry %+v", m)
	}
}

// TestLastWillAndSession cuts the agent's link: the broker publishes the
// offline will, keeps a command sent meanwhile in the agent's persistent
// session and delivers it when the agent is back, which then restores its
// online state.
func TestLastWillAndSession(t *testing.T) {
	b := start(t, broker.Config{})
	u, _ := url.Parse(b.URL())
	proxy := brokertest.NewProxy(t, u.Host)
	ground := peer(t, b.URL()) // first: see TestACL
	states := ground.MustSubscribe(t, agentbroker.Topics("d1").State, 1)
	_, cmds := agent(t, proxy.URL)
	brokertest.Receive(t, states, wait) // online

	proxy.Refuse(true)
	proxy.Cut()
	brokertest.ReceiveUntil(t, states, wait, func(m brokertest.Message) bool {
		return bytes.Equal(m.Payload, agentbroker.DefaultOffline("d1"))
	})
	ground.MustPublish(t, agentbroker.Topics("d1").Cmd, 1, false, []byte(`{"id":"while-away"}`))
	proxy.Refuse(false)
	if got := next(t, cmds); string(got) != `{"id":"while-away"}` {
		t.Fatalf("after the link came back: command %q", got)
	}
	brokertest.ReceiveUntil(t, states, wait, func(m brokertest.Message) bool {
		return bytes.Equal(m.Payload, agentbroker.DefaultOnline("d1"))
	})
}

// TestRestart restarts the broker on its data directory: the retained
// state and a command queued in the agent's session while it was away
// survive.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	logs := brokerLog(t)
	b, err := broker.Start(ctxFor(t, time.Minute), broker.Config{Addr: "127.0.0.1:0", DataDir: dir, Log: logs})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := agent(t, b.URL())
	if err := c.Close(ctxFor(t, wait)); err != nil { // offline, retained; the session stays
		t.Fatal(err)
	}
	peer(t, b.URL()).MustPublish(t, agentbroker.Topics("d1").Cmd, 1, false, []byte(`{"id":"queued"}`))
	b.Close()

	u, _ := url.Parse(b.URL())
	b2 := start(t, broker.Config{Addr: u.Host, DataDir: dir, Log: logs})
	if m := retainedState(t, b2.URL(), brokertest.PeerOptions{}); !bytes.Equal(m.Payload, agentbroker.DefaultOffline("d1")) {
		t.Fatalf("retained state after the restart: %q, want the offline state", m.Payload)
	}
	_, cmds := agent(t, b2.URL())
	// A command the broker handed the agent just as it disconnected is
	// sent again only after the broker's ack wait (nats-server: 30 s).
	select {
	case got := <-cmds:
		if string(got) != `{"id":"queued"}` {
			t.Fatalf("queued command after the restart: %q", got)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the command queued in the session did not come within 45 s of the restart")
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"no port", "127.0.0.1"},
		{"bad port", "127.0.0.1:http2"},
		{"port out of range", "127.0.0.1:70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := broker.Start(ctxFor(t, wait), broker.Config{Addr: tc.addr}); err == nil {
				b.Close()
				t.Fatalf("Start(%q) succeeded", tc.addr)
			}
		})
	}
	t.Run("port taken", func(t *testing.T) {
		b := start(t, broker.Config{})
		u, _ := url.Parse(b.URL())
		if b2, err := broker.Start(ctxFor(t, wait), broker.Config{Addr: u.Host}); err == nil {
			b2.Close()
			t.Fatal("a second broker on the same port started")
		} else {
			t.Log(err)
		}
	})
}

// TestACL: with passwords, only known users connect; a drone runs the
// agent's client within its own topics and reaches no other drone's; the
// ground reads and writes every drone's.
func TestACL(t *testing.T) {
	pw := map[string]string{broker.GroundUser: "g-secret", "d1": "d1-secret", "d2": "d2-secret"}
	b := start(t, broker.Config{Passwords: pw})
	as := func(user string) *brokertest.Peer {
		t.Helper()
		p, err := brokertest.Dial(b.URL(), brokertest.PeerOptions{Username: user, Password: pw[user]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	// The ground subscribes first, as dronectl ground does: a retained
	// message reaches new subscriptions only a moment after its PUBACK
	// (see retainedState), so d1's online state arrives live.
	ground := as(broker.GroundUser)
	states := ground.MustSubscribe(t, "fleet/+/state", 1)
	cmds := make(chan []byte, 4)
	c, err := agentbroker.Connect(ctxFor(t, wait), agentbroker.Config{URL: b.URL(), Drone: "d1", Username: "d1", Password: pw["d1"],
		Log: slog.New(slog.DiscardHandler)}, func(p []byte) { cmds <- p })
	if err != nil {
		t.Fatalf("drone d1 with its password: %v", err)
	}
	defer c.Close(context.Background())
	if m := brokertest.Receive(t, states, wait); m.Topic != "fleet/d1/state" {
		t.Errorf("the ground reads %s, want d1's state", m.Topic)
	}
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte(`{"id":"c1"}`))
	if got := next(t, cmds); string(got) != `{"id":"c1"}` {
		t.Errorf("d1 got %q", got)
	}
	d2 := as("d2")
	for _, f := range []string{"fleet/d1/cmd", "fleet/d1/state", "fleet/+/state", "fleet/#"} {
		if _, err := d2.Subscribe(f, 1); !errors.Is(err, brokertest.ErrRefused) {
			t.Errorf("d2 subscribing to %s: %v, want refused", f, err)
		}
	}
	// d2 cannot command d1 nor speak for it (the broker drops such a
	// publish; MQTT 3.1.1 has no way to say no).
	d2.Publish("fleet/d1/cmd", 1, false, []byte(`{"id":"forged"}`))
	d2.Publish("fleet/d1/state", 1, true, []byte(`{"drone":"d1","online":false}`))
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte(`{"id":"c2"}`))
	if got := next(t, cmds); string(got) != `{"id":"c2"}` {
		t.Errorf("d1 got %q after d2's forged command, want only the ground's", got)
	}
	if m := retainedState(t, b.URL(), brokertest.PeerOptions{Username: broker.GroundUser, Password: pw[broker.GroundUser]}); !bytes.Equal(m.Payload, agentbroker.DefaultOnline("d1")) {
		t.Errorf("d1's retained state %q: d2 overwrote it", m.Payload)
	}
	for _, o := range []brokertest.PeerOptions{{}, {Username: "d1", Password: "wrong"}, {Username: "d3", Password: "x"}} {
		if p, err := brokertest.Dial(b.URL(), o); err == nil {
			p.Close()
			t.Errorf("user %q with password %q connected", o.Username, o.Password)
		}
	}
}

func TestACLConfig(t *testing.T) {
	for _, pw := range []map[string]string{{"d.1": "x"}, {"d1": ""}, {"fleet/#": "x"}} {
		if b, err := broker.Start(ctxFor(t, wait), broker.Config{Addr: "127.0.0.1:0", Passwords: pw}); err == nil {
			b.Close()
			t.Errorf("Passwords %v accepted", pw)
		}
	}
}

func TestReadPasswords(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		perm          os.FileMode
		want          map[string]string
		msg           string
	}{
		{"users", "# the fleet\nground:g\n\nd1:$2a$11$abc\n", 0o600, map[string]string{"ground": "g", "d1": "$2a$11$abc"}, ""},
		{"readable by others", "ground:g\n", 0o644, nil, "chmod 600"},
		{"no colon", "ground\n", 0o600, nil, "line 1: want user:password"},
		{"empty password", "d1:\n", 0o600, nil, "line 1"},
		{"twice", "d1:a\nd1:b\n", 0o600, nil, `line 2: user "d1" again`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprint(i))
			if err := os.WriteFile(path, []byte(tc.content), tc.perm); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.perm)
			got, err := broker.ReadPasswords(path)
			if tc.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("%v, want an error saying %q", err, tc.msg)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Errorf("%v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestRestartWithPasswords: after a restart, the ground finds the retained
// states at once, passwords or not (Start loads them as the ground user).
func TestRestartWithPasswords(t *testing.T) {
	pw := map[string]string{broker.GroundUser: "g-secret", "d1": "d1-secret"}
	dir := t.TempDir()
	b := start(t, broker.Config{DataDir: dir, Passwords: pw})
	d1, err := brokertest.Dial(b.URL(), brokertest.PeerOptions{Username: "d1", Password: pw["d1"]})
	if err != nil {
		t.Fatal(err)
	}
	d1.MustPublish(t, "fleet/d1/state", 1, true, []byte(`{"drone":"d1","online":false}`))
	d1.Close()
	b.Close()
	u, _ := url.Parse(b.URL())
	b2 := start(t, broker.Config{Addr: u.Host, DataDir: dir, Passwords: pw})
	if m := retainedState(t, b2.URL(), brokertest.PeerOptions{Username: broker.GroundUser, Password: pw[broker.GroundUser]}); string(m.Payload) != `{"drone":"d1","online":false}` {
		t.Errorf("retained state after the restart: %q", m.Payload)
	}
}
