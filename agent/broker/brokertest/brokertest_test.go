package brokertest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
)

const wait = 5 * time.Second

func TestMosquittoRetainedAndRestart(t *testing.T) {
	m := Start(t, nil)
	if !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") {
		t.Fatalf("URL = %q", m.URL)
	}
	a := m.Peer(t, "")
	a.MustPublish(t, "fleet/d1/state", 1, true, []byte(`{"online":true}`))
	b := m.Peer(t, "")
	got := Receive(t, b.MustSubscribe(t, "fleet/d1/state", 1), wait)
	if !got.Retained || string(got.Payload) != `{"online":true}` {
		t.Fatalf("got %+v, want the retained state", got)
	}

	m.Restart()
	c := m.Peer(t, "") // the same port answers again
	ch := c.MustSubscribe(t, "fleet/#", 1)
	c.MustPublish(t, "fleet/d1/events", 1, false, []byte("after"))
	if got := Receive(t, ch, wait); string(got.Payload) != "after" {
		t.Fatalf("after restart got %+v; want only the new message (persistence is off)", got)
	}
}

// The per-drone ACL: each drone reads its own commands and writes its own
// topics; the ground reads and writes everything under fleet/. Run with
// mosquitto_passwd and with the Go fallback hash.
func TestMosquittoACL(t *testing.T) {
	for _, tool := range []string{"mosquitto_passwd", "go"} {
		t.Run(tool, func(t *testing.T) {
			if tool == "go" {
				old := passwdTool
				passwdTool = func() string { return "" }
				t.Cleanup(func() { passwdTool = old })
			} else if passwdTool() == "" {
				t.Skip("mosquitto_passwd not installed")
			}
			m := Start(t, &Options{Drones: []string{"d1", "d2"}})
			testACL(t, m)
		})
	}
}

func TestMosquittoTLSACL(t *testing.T) {
	m := Start(t, &Options{TLS: true, Drones: []string{"d1", "d2"}})
	if !strings.HasPrefix(m.URL, "ssl://") || m.CAFile() == "" {
		t.Fatalf("URL %q, CA %q", m.URL, m.CAFile())
	}
	testACL(t, m)
}

func testACL(t *testing.T, m *Mosquitto) {
	ground := m.Peer(t, GroundUser)
	d1 := m.Peer(t, "d1")
	all := ground.MustSubscribe(t, "fleet/#", 1)
	cmds := d1.MustSubscribe(t, "fleet/d1/cmd", 1)
	// Mosquitto 2.0 grants the SUBACK and filters on delivery; other
	// brokers refuse the subscription. Either way d1 gets nothing.
	other, err := d1.Subscribe("fleet/d2/cmd", 1)
	if err != nil && !errors.Is(err, ErrRefused) {
		t.Fatal(err)
	}
	wild := d1.MustSubscribe(t, "fleet/+/cmd", 1)
	d1.MustPublish(t, "fleet/d2/state", 1, true, []byte("forged"))
	d1.MustPublish(t, "fleet/d1/state", 1, true, []byte("mine"))
	got := ReceiveUntil(t, all, wait, func(m Message) bool { return m.Topic == "fleet/d1/state" })
	if len(got) != 1 {
		t.Errorf("the ground saw %s before d1's own state; want nothing from d1 on fleet/d2/state", summary(got))
	}
	ground.MustPublish(t, "fleet/d2/cmd", 1, false, []byte("for d2"))
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("go"))
	if m := Receive(t, cmds, wait); string(m.Payload) != "go" {
		t.Errorf("d1 got %+v", m)
	}
	if m := Receive(t, wild, wait); string(m.Payload) != "go" {
		t.Errorf("d1 on fleet/+/cmd got %+v first; want only its own command", m)
	}
	select {
	case m := <-other: // nil if refused: never ready
		t.Errorf("d1 received d2's command: %+v", m)
	default:
	}
	if _, err := Dial(m.URL, PeerOptions{Username: "d1", Password: "wrong"}); err == nil && !m.opts.TLS {
		t.Error("a wrong password connected")
	}
}

func TestFake(t *testing.T) {
	var got [][]byte
	f := NewFake("d1", func(p []byte) { got = append(got, p) })
	tp := broker.Topics("d1")
	if !bytes.Equal(f.Retained(), broker.DefaultOnline("d1")) {
		t.Fatalf("retained = %s", f.Retained())
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	if err := f.PublishState(ctx, []byte(`{"online":true,"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if !f.Command([]byte("c1")) || f.Command(make([]byte, broker.MaxPayload+1)) {
		t.Fatal("Command: want the first delivered, the oversized one dropped")
	}

	f.SetConnected(false)
	if !bytes.Equal(f.Retained(), broker.DefaultOffline("d1")) {
		t.Fatalf("after the link dropped, retained = %s; want the will", f.Retained())
	}
	if err := f.PublishTelemetry([]byte("t")); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("telemetry while down: %v", err)
	}
	if f.Command([]byte("c2")) {
		t.Fatal("a command was delivered while the link was down")
	}
	evDone := make(chan error, 1)
	go func() { evDone <- f.PublishEvent(ctx, []byte("e1")) }()
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := f.PublishState(short, []byte(`{"online":true,"v":2}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("state while down: %v, want a ctx error", err)
	}

	f.SetConnected(true)
	if err := <-evDone; err != nil {
		t.Fatal(err)
	}
	if string(f.Retained()) != `{"online":true,"v":2}` {
		t.Fatalf("after reconnect retained = %s; want the newest state", f.Retained())
	}
	if len(got) != 2 || string(got[1]) != "c2" {
		t.Fatalf("commands %q; want c1, c2", got)
	}
	if ev := f.Payloads(tp.Events); len(ev) != 1 || string(ev[0]) != "e1" {
		t.Fatalf("events %q", ev)
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Retained(), broker.DefaultOffline("d1")) {
		t.Fatalf("after Close retained = %s", f.Retained())
	}
	if err := f.PublishEvent(ctx, nil); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	want := broker.Stats{Reconnects: 1, Commands: 2, CommandsDropped: 1, TelemetryDropped: 1}
	if s := f.Stats(); s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
}
