package push

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
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
