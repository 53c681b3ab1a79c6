package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/skyswap/skyswap/agent/broker"
)

// client is the method set of *broker.Client that the agent uses. The
// agent declares its own interface; this one keeps Fake in step.
type client interface {
	PublishState(ctx context.Context, payload []byte) error
	PublishEvent(ctx context.Context, payload []byte) error
	PublishTelemetry(payload []byte) error
	PublishCamera(payload []byte) error
	Stats() broker.Stats
	Topics() broker.TopicSet
	Close(ctx context.Context) error
}

var (
	_ client = (*broker.Client)(nil)
	_ client = (*Fake)(nil)
)

// Fake stands in for *broker.Client in the agent's tests, with no broker:
// it records every message that reaches the "broker" (Messages), the test
// delivers commands (Command) and takes the link down and back up
// (SetConnected). It keeps the Client's contract: the online state is
// published on creation and again on every reconnect, the last will
// replaces it when the link drops, Close publishes the offline state;
// onCommand runs one command at a time; QoS 0 messages are dropped and
// counted while the link is down; state and events wait for it.
type Fake struct {
	topics broker.TopicSet
	will   []byte

	cmdMu     sync.Mutex // one onCommand at a time
	onCommand func(payload []byte)

	mu        sync.Mutex
	connected bool
	closed    bool
	state     []byte // what the client would publish on reconnect
	retained  []byte // what the broker holds on the state topic
	msgs      []Message
	events    [][]byte // events published while the link is down
	sentEvent uint64   // events that reached the broker, in publish order
	nEvents   uint64   // events published
	cmds      [][]byte // commands the broker holds while the link is down
	stats     broker.Stats
	changed   chan struct{}
}

// NewFake returns a connected Fake for drone, with the default online
// and offline payloads (broker.DefaultOnline, broker.DefaultOffline).
// onCommand receives what Command delivers; nil discards it.
func NewFake(drone string, onCommand func(payload []byte)) *Fake {
	f := &Fake{
		topics:    broker.Topics(drone),
		will:      broker.DefaultOffline(drone),
		onCommand: onCommand,
		connected: true,
		state:     broker.DefaultOnline(drone),
		changed:   make(chan struct{}),
	}
	f.stats.Connected = true
	f.recordLocked(f.topics.State, 1, true, f.state)
	f.retained = f.state
	return f
}

func (f *Fake) recordLocked(topic string, qos byte, retained bool, p []byte) {
	f.msgs = append(f.msgs, Message{Topic: topic, Payload: bytes.Clone(p), QoS: qos, Retained: retained})
	f.wakeLocked()
}

func (f *Fake) wakeLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Topics returns the drone's topics.
func (f *Fake) Topics() broker.TopicSet { return f.topics }

// Command delivers a command as the broker would: at once, calling
// onCommand and returning when it returns, if the link is up; on the next
// SetConnected(true) if it is down. It returns whether onCommand ran now.
// A payload larger than broker.MaxPayload is dropped and counted, as the
// Client does; after Close it is dropped.
func (f *Fake) Command(payload []byte) bool {
	f.mu.Lock()
	switch {
	case f.closed:
		f.mu.Unlock()
		return false
	case len(payload) > broker.MaxPayload:
		f.stats.CommandsDropped++
		f.mu.Unlock()
		return false
	case !f.connected:
		f.cmds = append(f.cmds, bytes.Clone(payload))
		f.mu.Unlock()
		return false
	}
	f.mu.Unlock()
	f.deliver(payload)
	return true
}

func (f *Fake) deliver(p []byte) {
	f.cmdMu.Lock()
	defer f.cmdMu.Unlock()
	f.mu.Lock()
	f.stats.Commands++
	f.mu.Unlock()
	if f.onCommand != nil {
		f.onCommand(bytes.Clone(p))
	}
}

// SetConnected takes the link down (false: the broker publishes the last
// will) or brings it back (true: a reconnect; the current state is
// published, then the events that waited, then the commands the broker
// held are delivered).
func (f *Fake) SetConnected(on bool) {
	f.mu.Lock()
	if f.closed || f.connected == on {
		f.mu.Unlock()
		return
	}
	f.connected, f.stats.Connected = on, on
	if !on {
		f.retained = f.will
		f.recordLocked(f.topics.State, 1, true, f.will)
		f.mu.Unlock()
		return
	}
	f.stats.Reconnects++
	f.retained = f.state
	f.recordLocked(f.topics.State, 1, true, f.state)
	for _, e := range f.events {
		f.recordLocked(f.topics.Events, 1, false, e)
		f.sentEvent++
	}
	f.events = nil
	cmds := f.cmds
	f.cmds = nil
	f.mu.Unlock()
	for _, c := range cmds {
		f.deliver(c)
	}
}

// PublishState records payload as the retained state if the link is up,
// else waits for it (or ctx) like the Client.
func (f *Fake) PublishState(ctx context.Context, payload []byte) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return broker.ErrClosed
	}
	f.state = bytes.Clone(payload)
	if f.connected {
		f.retained = f.state
		f.recordLocked(f.topics.State, 1, true, f.state)
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	// Published (this state or a newer one) on reconnect.
	return f.waitFor(ctx, func() bool { return f.connected }, "state")
}

// PublishEvent records payload on the events topic if the link is up,
// else queues it for the reconnect and waits for it (or ctx).
func (f *Fake) PublishEvent(ctx context.Context, payload []byte) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return broker.ErrClosed
	}
	f.nEvents++
	n := f.nEvents
	if f.connected {
		f.recordLocked(f.topics.Events, 1, false, payload)
		f.sentEvent++
		f.mu.Unlock()
		return nil
	}
	f.events = append(f.events, bytes.Clone(payload))
	f.mu.Unlock()
	return f.waitFor(ctx, func() bool { return f.sentEvent >= n }, "event")
}

// waitFor waits until done (called with f.mu held) is true, f is
// closed, or ctx ends.
func (f *Fake) waitFor(ctx context.Context, done func() bool, what string) error {
	for {
		f.mu.Lock()
		ok, closed, changed := done(), f.closed, f.changed
		f.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return broker.ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("brokertest: fake %s not acknowledged yet: %w", what, ctx.Err())
		}
	}
}

// PublishTelemetry records payload (QoS 0) if the link is up; else it
// counts a drop and returns broker.ErrNotConnected.
func (f *Fake) PublishTelemetry(payload []byte) error {
	return f.publish0(f.topics.Telemetry, payload, &f.stats.TelemetryDropped)
}

// PublishCamera is PublishTelemetry for the camera topic.
func (f *Fake) PublishCamera(payload []byte) error {
	return f.publish0(f.topics.Camera, payload, &f.stats.CameraDropped)
}

func (f *Fake) publish0(topic string, p []byte, dropped *uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return broker.ErrClosed
	case !f.connected:
		*dropped++
		return broker.ErrNotConnected
	}
	f.recordLocked(topic, 0, false, p)
	return nil
}

// Stats returns the Fake's counters.
func (f *Fake) Stats() broker.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Close publishes the offline state if the link is up, and closes.
// Closing twice does nothing.
func (f *Fake) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	if f.connected {
		f.retained = f.will
		f.recordLocked(f.topics.State, 1, true, f.will)
	}
	f.closed, f.connected, f.stats.Connected = true, false, false
	f.wakeLocked()
	return nil
}

// Messages returns every message that reached the broker, in order,
// including the broker's own last will.
func (f *Fake) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.msgs...)
}

// Payloads returns the payloads that reached the broker on topic, in
// order.
func (f *Fake) Payloads(topic string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, m := range f.msgs {
		if m.Topic == topic {
			out = append(out, m.Payload)
		}
	}
	return out
}

// Retained returns the state the broker holds now (what a ground station
// subscribing now would get).
func (f *Fake) Retained() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.retained)
}

// Wait waits until cond, called with every message so far, returns true,
// or ctx ends. For agents that publish from their own goroutines. cond
// runs with the Fake locked: it must not keep the slice or call the Fake.
func (f *Fake) Wait(ctx context.Context, cond func([]Message) bool) error {
	for {
		f.mu.Lock()
		ok, changed := cond(f.msgs), f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("brokertest: fake: condition not met: %w", ctx.Err())
		}
	}
}
