package brokertest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Message is one MQTT message, as a Peer received it or a Fake recorded
// it.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool // for a Peer: delivered because it was retained
}

// PeerOptions are a Peer's credentials; the zero value is anonymous.
type PeerOptions struct {
	Username, Password string
	TLS                *tls.Config // for ssl:// URLs
}

// Peer is a plain MQTT 3.1.1 client with a clean session: the other side
// of a test (the ground station, another drone). Its methods wait for the
// broker's acknowledgement, at most 10 s.
type Peer struct {
	c mqtt.Client
}

var peerSeq atomic.Uint64

const peerTimeout = 10 * time.Second

// Dial connects a Peer to url.
func Dial(url string, o PeerOptions) (*Peer, error) {
	opts := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(fmt.Sprintf("brokertest-peer-%d-%d", os.Getpid(), peerSeq.Add(1))).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectTimeout(peerTimeout).
		SetOrderMatters(true)
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(peerTimeout) {
		c.Disconnect(0)
		return nil, fmt.Errorf("brokertest: peer connect to %s: no CONNACK within %v", url, peerTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("brokertest: peer connect to %s as %q: %w", url, o.Username, err)
	}
	return &Peer{c: c}, nil
}

// Peer connects a Peer as user ("" for anonymous) with the credentials
// Start made for it, and closes it when the test ends.
func (m *Mosquitto) Peer(t testing.TB, user string) *Peer {
	t.Helper()
	var o PeerOptions
	switch {
	case m.opts.TLS:
		if user == "" {
			user = "anonymous"
		}
		cert, key := m.CertFiles(user)
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(m.pki.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		o.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	case user != "":
		o.Username, o.Password = user, Password(user)
	}
	p, err := Dial(m.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// ErrRefused is a subscription the broker refused (SUBACK 0x80).
var ErrRefused = errors.New("brokertest: subscription refused by the broker")

// Subscribe subscribes to filter and returns the channel of its messages
// (buffered; a test that lets more than 4096 pile up stalls the Peer).
// A refusal is ErrRefused.
func (p *Peer) Subscribe(filter string, qos byte) (<-chan Message, error) {
	ch := make(chan Message, 4096)
	tok := p.c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		ch <- Message{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Retained: m.Retained()}
	})
	if !tok.WaitTimeout(peerTimeout) {
		return nil, fmt.Errorf("brokertest: subscribe %s: no SUBACK within %v", filter, peerTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("brokertest: subscribe %s: %w", filter, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok && st.Result()[filter] == 0x80 {
		return nil, fmt.Errorf("%w: %s", ErrRefused, filter)
	}
	return ch, nil
}

// MustSubscribe is Subscribe that fails the test on error.
func (p *Peer) MustSubscribe(t testing.TB, filter string, qos byte) <-chan Message {
	t.Helper()
	ch, err := p.Subscribe(filter, qos)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Publish publishes payload and, for QoS 1 and 2, waits for the broker's
// acknowledgement. Mosquitto acknowledges a publish its ACL refuses too
// (MQTT 3.1.1 cannot say no): check on the receiving side.
func (p *Peer) Publish(topic string, qos byte, retained bool, payload []byte) error {
	tok := p.c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(peerTimeout) {
		return fmt.Errorf("brokertest: publish %s: no acknowledgement within %v", topic, peerTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("brokertest: publish %s: %w", topic, err)
	}
	return nil
}

// MustPublish is Publish that fails the test on error.
func (p *Peer) MustPublish(t testing.TB, topic string, qos byte, retained bool, payload []byte) {
	t.Helper()
	if err := p.Publish(topic, qos, retained, payload); err != nil {
		t.Fatal(err)
	}
}

// Close disconnects the Peer. Closing twice does nothing.
func (p *Peer) Close() { p.c.Disconnect(100) }

// Receive returns the next message from ch, failing the test if none
// comes within timeout.
func Receive(t testing.TB, ch <-chan Message, timeout time.Duration) Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("brokertest: no message within %v", timeout)
		return Message{}
	}
}

// ReceiveUntil returns the messages from ch up to and including the first
// for which match is true, failing the test if it does not come within
// timeout.
func ReceiveUntil(t testing.TB, ch <-chan Message, timeout time.Duration, match func(Message) bool) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var got []Message
	for {
		select {
		case m := <-ch:
			got = append(got, m)
			if match(m) {
				return got
			}
		case <-deadline.C:
			t.Fatalf("brokertest: the expected message did not come within %v; got %d others: %s", timeout, len(got), summary(got))
			return nil
		}
	}
}

func summary(ms []Message) string {
	s := ""
	for i, m := range ms {
		if i == 8 {
			return s + fmt.Sprintf(" ... (%d more)", len(ms)-i)
		}
		p := string(m.Payload)
		if len(p) > 80 {
			p = p[:80] + "..."
		}
		s += fmt.Sprintf(" [%s retained=%v %q]", m.Topic, m.Retained, p)
	}
	return s
}
