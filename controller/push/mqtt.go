package push

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/skyswap/skyswap/agent/broker"
)

// Fixed tuning of the ground's connection.
const (
	connectTimeout = 10 * time.Second
	ackTimeout     = connectTimeout + time.Second // CONNACK, SUBACK, PUBACK; paho's own connect timeout comes first
	keepAlive      = 10 * time.Second
	subackRefused  = 0x80
	inbox          = 1024 // messages waiting for the caller's loop
)

// ErrNotAuthorized: the broker refused the ground's credentials or a
// subscription.
var ErrNotAuthorized = errors.New("push: not authorized by the broker")

// Message is one MQTT message the ground received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool   // sent because it was retained, not live
	ack      func() // nil: acknowledged on arrival
}

// Ack acknowledges the message to the broker. Only a watcher on a
// persistent session (Config.Session) needs it: call it once what the
// message says is recorded, and the broker sends again, after the
// watcher reconnects, what was not acknowledged. Elsewhere it does
// nothing.
func (m Message) Ack() {
	if m.ack != nil {
		m.ack()
	}
}

// link is the ground's MQTT connection for one command: a clean session
// under a fresh client id that follows some topics. It is the only place
// paho appears. If the connection drops it reconnects and subscribes again;
// what was published meanwhile is missed.
type link struct {
	c    mqtt.Client
	log  *slog.Logger
	msgs chan Message
	done chan struct{} // closed by close: handlers drop what comes after

	manualAck bool // a persistent session: the caller acknowledges

	mu      sync.Mutex
	filters []string // subscribed, for reconnects
}

// checkBroker checks a broker URL, or a cluster's nodes comma-separated,
// and the TLS files that go with it (agent/broker's checks: one for the
// drone and the ground), and returns the URLs and the TLS configuration
// (nil for plain URLs).
func checkBroker(raw, caFile, certFile, keyFile string) ([]*url.URL, *tls.Config, error) {
	urls, secure, err := broker.ParseURL(raw)
	if err != nil {
		return nil, nil, configError("Broker", err)
	}
	tc, err := broker.TLSFiles(raw, secure, caFile, certFile, keyFile)
	if err != nil {
		return nil, nil, configError("", err)
	}
	return urls, tc, nil
}

// configError is broker's *ConfigError as push's, under field (or the
// same field name when "").
func configError(field string, err error) error {
	var ce *broker.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	return &ConfigError{cmp.Or(field, ce.Field), ce.Err}
}

// dial connects to the broker s names: with a clean session under a fresh
// client id, or, with session, the persistent session of that id. Messages
// on the filters in routes go to l.msgs from the first packet on: a
// persistent session's queued messages come right after the CONNACK,
// before follow's subscription is acknowledged, and paho leaves a message
// that no route matches unacknowledged (it would come again only on the
// next connection).
func dial(ctx context.Context, s *settings, session string, routes ...string) (*link, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l := &link{log: s.log, msgs: make(chan Message, inbox), done: make(chan struct{})}
	o := mqtt.NewClientOptions()
	for _, u := range s.urls {
		o.AddBroker(u.String())
	}
	who := s.cfg.Drone
	if who == "" {
		who = "watch" // Watch: the ground station, following every drone
	}
	o.SetClientID("dronectl-" + who + "-" + hex.EncodeToString(b[:]))
	o.SetCleanSession(true) // nothing of ours outlives the command on the broker
	if session != "" {
		o.SetClientID(session)
		o.SetCleanSession(false)
		o.SetAutoAckDisabled(true) // Message.Ack, once the caller has recorded it
		l.manualAck = true
	}
	o.SetUsername(s.cfg.Username)
	o.SetPassword(s.cfg.Password)
	o.SetProtocolVersion(4) // MQTT 3.1.1, as the agent speaks
	o.SetOrderMatters(true) // handlers only queue; events stay in order
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(5 * time.Second)
	o.SetConnectRetry(false)
	o.SetKeepAlive(keepAlive)
	o.SetPingTimeout(keepAlive)
	o.SetConnectTimeout(connectTimeout)
	o.SetWriteTimeout(connectTimeout)
	o.SetDialer(&net.Dialer{Timeout: connectTimeout})
	if s.tls != nil {
		o.SetTLSConfig(s.tls)
	}
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		l.log.Warn("lost the broker; reconnecting (events published meanwhile are missed)", "broker", broker.Redacted(s.urls), "err", err)
	})
	var conns atomic.Uint64
	o.SetOnConnectHandler(func(mqtt.Client) {
		if conns.Add(1) == 1 {
			return // the first connection: follow subscribes
		}
		l.log.Info("reconnected to the broker", "broker", broker.Redacted(s.urls))
		l.mu.Lock()
		filters := l.filters
		l.mu.Unlock()
		for _, f := range filters {
			if err := l.subscribe(context.Background(), f); err != nil {
				l.log.Warn("subscribe again after reconnect", "topic", f, "err", err)
			}
		}
	})
	l.c = mqtt.NewClient(o)
	for _, f := range routes {
		l.c.AddRoute(f, l.receive)
	}
	if err := wait(ctx, l.c.Connect()); err != nil {
		l.c.Disconnect(0)
		hint := "is the broker up, and is the URL right?"
		if errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised) {
			err = fmt.Errorf("%w: %w", ErrNotAuthorized, err)
			hint = "check the user and password, or the client certificate"
		}
		return nil, fmt.Errorf("push: connect to %s: %w (%s)", broker.Redacted(s.urls), err, hint)
	}
	return l, nil
}

// follow subscribes to filter (QoS 1) and returns once the broker has
// acknowledged it: from then on its messages, retained ones first, come
// on l.msgs.
func (l *link) follow(ctx context.Context, filter string) error {
	if err := l.subscribe(ctx, filter); err != nil {
		return err
	}
	l.mu.Lock()
	l.filters = append(l.filters, filter)
	l.mu.Unlock()
	return nil
}

func (l *link) subscribe(ctx context.Context, filter string) error {
	tok := l.c.Subscribe(filter, 1, l.receive)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("push: subscribe to %s: %w", filter, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[filter] == subackRefused {
		return fmt.Errorf("%w: subscription to %s refused: the ground's user needs read access to fleet/# in the broker's ACL", ErrNotAuthorized, filter)
	}
	return nil
}

// receive is paho's handler for every followed filter: it queues the
// message on l.msgs, or drops it once the link is closed.
func (l *link) receive(_ mqtt.Client, m mqtt.Message) {
	msg := Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()}
	if l.manualAck {
		msg.ack = m.Ack
	}
	select {
	case l.msgs <- msg:
	case <-l.done:
	}
}

// publish publishes payload at QoS 1, not retained, and waits for the
// broker's acknowledgement.
func (l *link) publish(ctx context.Context, topic string, payload []byte) error {
	if err := wait(ctx, l.c.Publish(topic, 1, false, payload)); err != nil {
		return fmt.Errorf("push: publish on %s: %w", topic, err)
	}
	return nil
}

// close disconnects; messages still arriving are dropped.
func (l *link) close() {
	close(l.done)
	l.c.Disconnect(250)
}

// wait waits for tok, at most ackTimeout or until ctx ends.
func wait(ctx context.Context, tok mqtt.Token) error {
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker within %s", ackTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
