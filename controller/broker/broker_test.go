package broker_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
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

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
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
	c, err := agentbroker.Connect(ctxFor(t, wait), agentbroker.Config{URL: url, Drone: "d1", KeepAlive: time.Second,
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

// retainedState is what a new subscriber gets first on the state topic.
func retainedState(t *testing.T, url string) brokertest.Message {
	t.Helper()
	p := peer(t, url)
	defer p.Close()
	return brokertest.Receive(t, p.MustSubscribe(t, agentbroker.Topics("d1").State, 1), wait)
}

// TestAgentClient runs the drone agent's MQTT client against the embedded
// broker: retained online state, QoS 1 commands, QoS 1 events, QoS 0
// telemetry.
func TestAgentClient(t *testing.T) {
	b := start(t, broker.Config{})
	c, cmds := agent(t, b.URL())
	tp := agentbroker.Topics("d1")
	if m := retainedState(t, b.URL()); !m.Retained || !bytes.Equal(m.Payload, agentbroker.DefaultOnline("d1")) {
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
	_, cmds := agent(t, proxy.URL)
	ground := peer(t, b.URL())
	states := ground.MustSubscribe(t, agentbroker.Topics("d1").State, 1)
	brokertest.Receive(t, states, wait) // retained online

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
	b, err := broker.Start(ctxFor(t, time.Minute), broker.Config{Addr: "127.0.0.1:0", DataDir: dir})
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
	b2 := start(t, broker.Config{Addr: u.Host, DataDir: dir})
	if m := retainedState(t, b2.URL()); !bytes.Equal(m.Payload, agentbroker.DefaultOffline("d1")) {
		t.Fatalf("retained state after the restart: %q, want the offline state", m.Payload)
	}
	_, cmds := agent(t, b2.URL())
	if got := next(t, cmds); string(got) != `{"id":"queued"}` {
		t.Fatalf("queued command after the restart: %q", got)
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
