package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats-server/v2/server"
)

// retainedStream is where nats-server keeps retained messages.
const retainedStream = "$MQTT_rmsgs"

// warmUp loads the retained messages before Start returns. nats-server
// loads an account's retained messages when its first MQTT client
// connects, through a consumer, in the background, and a subscription made
// before they are loaded gets none of those still missing: after a
// restart, the ground's own intake would miss every offline drone's last
// will. So Start connects once, as user with password, and waits until
// that consumer has delivered the whole stream. With nothing retained it
// does nothing.
func (b *Broker) warmUp(ctx context.Context, user, password string) error {
	if b.retained() == nil {
		return nil
	}
	var id [4]byte
	rand.Read(id[:])
	o := mqtt.NewClientOptions().AddBroker(b.url).SetClientID("skyswap-broker-warm-up-" + hex.EncodeToString(id[:])).
		SetUsername(user).SetPassword(password).SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(startTimeout) || tok.Error() != nil {
		return fmt.Errorf("connect to load the retained messages: %v", tok.Error())
	}
	defer c.Disconnect(0)
	deadline := time.Now().Add(startTimeout)
	for !b.retainedLoaded() {
		if time.Now().After(deadline) {
			return errors.New("the retained messages did not load")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// retained returns the retained messages' stream, nil if it holds none.
func (b *Broker) retained() *server.StreamDetail {
	acc, err := b.ns.JszAccount(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true, Consumer: true})
	if err != nil {
		return nil
	}
	for i := range acc.Streams {
		if s := &acc.Streams[i]; s.Name == retainedStream && s.State.Msgs > 0 {
			return s
		}
	}
	return nil
}

// retainedLoaded reports whether a consumer has delivered the whole
// retained messages' stream.
func (b *Broker) retainedLoaded() bool {
	s := b.retained()
	if s == nil {
		return true
	}
	for _, c := range s.Consumer {
		if c != nil && c.NumPending == 0 && c.Delivered.Stream > 0 {
			return true
		}
	}
	return false
}
