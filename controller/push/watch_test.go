package push

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
)

func TestWatch(t *testing.T) {
	m := brokertest.Start(t, nil)
	drone := m.Peer(t, "")
	drone.MustPublish(t, "fleet/d1/state", 1, true, []byte(`{"drone":"d1","online":true}`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := Watch(ctx, Config{Broker: m.URL}, "fleet/+/state", "fleet/+/telemetry")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	next := func() Message {
		t.Helper()
		select {
		case msg := <-w.Messages():
			return msg
		case <-ctx.Done():
			t.Fatal("no message")
			return Message{}
		}
	}
	if msg := next(); msg.Topic != "fleet/d1/state" || !msg.Retained {
		t.Errorf("first message %+v, want the retained state", msg)
	}
	drone.MustPublish(t, "fleet/d2/telemetry", 0, false, []byte(`{"alt_m":1}`))
	if msg := next(); msg.Topic != "fleet/d2/telemetry" || string(msg.Payload) != `{"alt_m":1}` || msg.Retained {
		t.Errorf("live message %+v", msg)
	}

	var ce *ConfigError
	if _, err := Watch(ctx, Config{Broker: "http://x:1"}, "fleet/#"); !errors.As(err, &ce) || ce.Field != "Broker" {
		t.Errorf("bad broker: %v", err)
	}
}

// TestWatchSessionAndSend: a watcher on a persistent session gets, when it
// comes back, what was published while it was away; Send publishes a
// signed command on its drone's topic; a cluster's nodes are tried in
// order, a dead one skipped.
func TestWatchSessionAndSend(t *testing.T) {
	m := brokertest.Start(t, nil)
	drone := m.Peer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dead := "tcp://127.0.0.1:1"
	cfg := Config{Broker: dead + "," + m.URL, Session: "skyswap-test-session"}
	w, err := Watch(ctx, cfg, "fleet/+/events")
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	drone.MustPublish(t, "fleet/d1/events", 1, false, []byte(`{"drone":"d1","phase":"pulling"}`))
	// Not acknowledged: it comes again on the next connection; then
	// acknowledged, it does not.
	for _, ack := range []bool{false, true} {
		if w, err = Watch(ctx, cfg, "fleet/+/events"); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-w.Messages():
			if msg.Topic != "fleet/d1/events" {
				t.Errorf("message %+v, want the event published while the watcher was away", msg)
			}
			if ack {
				msg.Ack()
			}
		case <-ctx.Done():
			t.Fatalf("the persistent session did not keep the event (acknowledged before: %v)", !ack)
		}
		time.Sleep(200 * time.Millisecond) // the PUBACK goes out
		w.Close()
	}
	if w, err = Watch(ctx, cfg, "fleet/+/events"); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	select {
	case msg := <-w.Messages():
		t.Errorf("an acknowledged message came again: %+v", msg)
	case <-time.After(time.Second):
	}

	cmds := drone.MustSubscribe(t, "fleet/d7/cmd", 1)
	_, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Signer{Key: priv}.Sign(command.Command{ID: "r1.u.d7", Kind: command.KindStatus, Drone: "d7"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(ctx, command.Command{ID: "x", Drone: "d7"}); err == nil {
		t.Error("Send of an unsigned command: no error")
	}
	if err := w.Send(ctx, c); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-cmds:
		got, err := command.Parse(msg.Payload)
		if err != nil || got.ID != c.ID || string(got.Sig) != string(c.Sig) {
			t.Errorf("the drone got %s (%v), want command %s as signed", msg.Payload, err, c.ID)
		}
	case <-ctx.Done():
		t.Fatal("the command did not reach fleet/d7/cmd")
	}
}
