package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// MaxPayload is the largest command the Client passes to onCommand. A
// larger one is dropped, acknowledged (so the broker does not redeliver
// it), logged and counted in Stats.CommandsDropped. Outgoing payloads have
// no limit here (the broker has its own: Mosquitto's message_size_limit).
const MaxPayload = 64 << 10

// Sentinel errors. Errors from this package wrap them; check with errors.Is.
var (
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("broker: client closed")
	// ErrNotConnected: a QoS 0 message was dropped because the connection
	// is down (the Client reconnects by itself).
	ErrNotConnected = errors.New("broker: not connected")
	// ErrNotAuthorized: the broker refused this drone's credentials
	// (CONNACK "bad user name or password" or "not authorized") or its
	// subscription to the command topic (an ACL).
	ErrNotAuthorized = errors.New("broker: not authorized")
)

// Fixed tuning; see the package doc for the reconnect schedule.
const (
	commandQueue         = 256                    // commands waiting for onCommand
	telemetryQueue       = 32                     // ~1.6 s at 20 Hz
	cameraQueue          = 4                      // frames; the newest matter
	maxReconnectInterval = 10 * time.Second       // longest wait between reconnect attempts
	writeTimeout         = 10 * time.Second       // one packet's write; longer is a dead link
	retryDelay           = time.Second            // a failed SUBSCRIBE or state PUBLISH on an open link
	disconnectQuiesce    = 250 * time.Millisecond // Close: time for DISCONNECT to go out
	subackFailure        = 0x80                   // SUBACK return code: refused
)

// Client is a drone's connection to the fleet broker. Its methods are safe
// for concurrent use.
type Client struct {
	s         *settings
	paho      mqtt.Client
	onCommand func(payload []byte)

	cmds         chan inbound
	stopDispatch chan struct{} // closed by Close: onCommand is not called again
	dispatchDone chan struct{} // closed when the dispatcher has returned

	telemetry, camera *stream

	kick chan struct{}  // capacity 1: the state loop has work
	done chan struct{}  // closed by Close: the state loop and the streams stop
	wg   sync.WaitGroup // the state loop and the streams

	mu         sync.Mutex
	closing    bool
	epoch      uint64        // connections so far; 1 is the first
	epochGone  chan struct{} // closed when connection epoch+1 is up
	readyEpoch uint64        // newest connection on which the SUBSCRIBE was granted
	fatal      error         // the first connection's refusal, for Connect
	state      []byte        // current state: the last PublishState, or the online payload
	stateGen   uint64        // generation of state; 1 is the online payload
	sentGen    uint64        // newest state generation published...
	sentEpoch  uint64        // ...and on which connection
	ackedGen   uint64        // newest state generation the broker acknowledged
	changed    chan struct{} // closed and replaced when closing, readyEpoch, fatal or ackedGen change

	reconnects      atomic.Uint64
	commands        atomic.Uint64
	commandsDropped atomic.Uint64
}

// inbound is a command waiting for onCommand, and its acknowledgement.
type inbound struct {
	payload []byte
	ack     func()
}

// Stats are the Client's counters since Connect.
type Stats struct {
	Connected        bool   // the connection is open now
	Reconnects       uint64 // connections made after the first
	Commands         uint64 // commands passed to onCommand
	CommandsDropped  uint64 // commands larger than MaxPayload, or beyond 256 queued for onCommand
	TelemetryDropped uint64 // telemetry messages not sent: link down, or queue full
	CameraDropped    uint64 // camera frames not sent: link down, or queue full
}

// LogValue logs s as a group.
func (s Stats) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("connected", s.Connected),
		slog.Uint64("reconnects", s.Reconnects),
		slog.Uint64("commands", s.Commands),
		slog.Uint64("commands_dropped", s.CommandsDropped),
		slog.Uint64("telemetry_dropped", s.TelemetryDropped),
		slog.Uint64("camera_dropped", s.CameraDropped),
	)
}

// Connect is New, then Start: the usual way to get a connected Client.
func Connect(ctx context.Context, cfg Config, onCommand func(payload []byte)) (*Client, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx, onCommand); err != nil {
		return nil, err
	}
	return c, nil
}

// New checks cfg and returns a Client that is not connected yet, so that
// what handles the commands can be built with the Client as its
// publisher; Start connects it. Until Start, PublishEvent returns
// ErrNotStarted and telemetry is dropped as on a link that is down.
func New(cfg Config) (*Client, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	c := &Client{
		s:            s,
		cmds:         make(chan inbound, commandQueue),
		stopDispatch: make(chan struct{}),
		dispatchDone: make(chan struct{}),
		kick:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		state:        s.online,
		stateGen:     1,
		epochGone:    make(chan struct{}),
		changed:      make(chan struct{}),
	}
	c.telemetry = &stream{c: c, topic: s.topics.Telemetry, q: make(chan []byte, telemetryQueue)}
	c.camera = &stream{c: c, topic: s.topics.Camera, q: make(chan []byte, cameraQueue)}
	c.paho = mqtt.NewClient(c.options())
	// The route exists before the first CONNACK: a persistent session may
	// deliver queued commands before Subscribe is even called.
	c.paho.AddRoute(s.topics.Cmd, c.onMessage)
	c.wg.Add(3)
	go c.stateLoop()
	go c.telemetry.run()
	go c.camera.run()
	return c, nil
}

// ErrNotStarted is returned by PublishEvent before Start.
var ErrNotStarted = errors.New("broker: the client is not started: call Start first")

// Start connects to cfg.URL as drone cfg.Drone, subscribes to its command
// topic (QoS 1) and publishes its online state retained, and returns once
// the broker has acknowledged both. From then on the Client keeps the
// link up by itself until Close (see the package doc).
//
// onCommand receives every command payload of at most MaxPayload bytes,
// on one goroutine, in arrival order; the command is acknowledged to the
// broker when onCommand returns. It may call the Client's Publish methods
// but not Close. It is required.
//
// Start retries a broker it cannot reach (1/4 s, 1/2 s, 1 s... up to 10 s
// apart) until ctx ends: give ctx a deadline to fail fast, or none for an
// agent that should wait for the network. It does not retry what retrying
// cannot fix: refused credentials or subscription (ErrNotAuthorized), a
// broker certificate not trusted. A Client whose Start failed is closed.
func (c *Client) Start(ctx context.Context, onCommand func(payload []byte)) error {
	if onCommand == nil {
		return errors.New("broker: Start: onCommand is nil: pass the function that handles the drone's commands")
	}
	c.mu.Lock()
	if c.onCommand != nil || c.closing {
		c.mu.Unlock()
		return errors.New("broker: Start: the client was started or closed already: make a new one")
	}
	c.onCommand = onCommand
	c.mu.Unlock()
	go c.dispatch()
	if err := c.connect(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), c.s.connectTimeout)
		defer cancel()
		_ = c.Close(cctx)
		return err
	}
	return nil
}

func (c *Client) options() *mqtt.ClientOptions {
	s := c.s
	o := mqtt.NewClientOptions()
	for _, u := range s.urls {
		o.AddBroker(u.String())
	}
	o.SetClientID(s.clientID)
	o.SetUsername(s.username)
	o.SetPassword(s.password)
	o.SetProtocolVersion(4) // MQTT 3.1.1: Mosquitto, EMQX and NATS all speak it; no silent fall-back to 3.1
	o.SetCleanSession(false)
	// Unacknowledged events are sent again on reconnect, in order; states
	// are not kept: the state loop sends the newest one on reconnect.
	o.SetStore(&store{Store: mqtt.NewOrderedMemoryStore(), skip: s.topics.State})
	o.SetOrderMatters(true)    // the handler only queues; order is kept for the dispatcher
	o.SetAutoAckDisabled(true) // PUBACK after onCommand returns
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(maxReconnectInterval)
	o.SetConnectRetry(false) // Connect runs its own loop, to stop on ctx and on refusals
	o.SetKeepAlive(s.keepAlive)
	o.SetPingTimeout(s.keepAlive)
	o.SetConnectTimeout(s.connectTimeout)
	o.SetWriteTimeout(writeTimeout)
	o.SetDialer(&net.Dialer{Timeout: s.connectTimeout, KeepAlive: s.keepAlive})
	if s.tls != nil {
		o.SetTLSConfig(s.tls)
	}
	o.SetBinaryWill(s.topics.State, s.will, 1, true)
	o.SetDefaultPublishHandler(c.onStray)
	o.SetOnConnectHandler(c.onConnect)
	o.SetConnectionLostHandler(c.onConnectionLost)
	o.SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
		c.s.log.Debug("mqtt reconnecting", "url", c.s.where())
	})
	return o
}

// connect makes the first connection and waits until the subscription
// and the online state are acknowledged.
func (c *Client) connect(ctx context.Context) error {
	where := c.s.where()
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		tok := c.paho.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return fmt.Errorf("broker: connect to %s: %w (still connecting)", where, ctx.Err())
		}
		err := tok.Error()
		if err == nil {
			break
		}
		if ct, ok := tok.(*mqtt.ConnectToken); ok {
			switch ct.ReturnCode() {
			case packets.ErrRefusedBadUsernameOrPassword, packets.ErrRefusedNotAuthorised:
				return fmt.Errorf("%w: %s refused drone %s's credentials (%v): check Username and Password, or the client certificate",
					ErrNotAuthorized, where, c.s.drone, err)
			case packets.ErrRefusedIDRejected:
				return configErr("ClientID", "%q rejected by %s: give a client id the broker accepts", c.s.clientID, where)
			case packets.ErrRefusedBadProtocolVersion:
				return fmt.Errorf("broker: %s does not accept MQTT 3.1.1 (%v): point URL at an MQTT 3.1.1 or 5 broker", where, err)
			}
		}
		if cve := (*tls.CertificateVerificationError)(nil); errors.As(err, &cve) {
			return fmt.Errorf("broker: connect to %s: the broker's certificate is not trusted: %w: set CAFile to the CA that signed it", where, err)
		}
		c.s.log.Warn("mqtt connect failed; retrying", "url", where, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("broker: connect to %s: %w; last attempt: %w", where, ctx.Err(), err)
		}
		delay = min(2*delay, maxReconnectInterval)
	}
	for {
		c.mu.Lock()
		fatal, ready, changed := c.fatal, c.readyEpoch > 0 && c.ackedGen > 0, c.changed
		c.mu.Unlock()
		switch {
		case fatal != nil:
			return fatal
		case ready:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("broker: connected to %s, but the broker did not acknowledge the subscription to %s and the online state in time: %w",
				where, c.s.topics.Cmd, ctx.Err())
		}
	}
}

// onConnect runs (on its own goroutine) after every successful
// connection: subscribe, then let the state loop publish the state.
func (c *Client) onConnect(mqtt.Client) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.epoch++
	epoch := c.epoch
	close(c.epochGone)
	c.epochGone = make(chan struct{})
	c.mu.Unlock()
	if epoch > 1 {
		c.s.log.Info("mqtt reconnected", "url", c.s.where(), "reconnects", c.reconnects.Add(1))
	} else {
		c.s.log.Info("mqtt connected", "url", c.s.where(), "client_id", c.s.clientID)
	}
	for {
		err := c.subscribe()
		if err == nil {
			break
		}
		if errors.Is(err, ErrNotAuthorized) {
			c.s.log.Error("mqtt subscription refused: this drone receives no commands", "topic", c.s.topics.Cmd, "err", err)
			c.mu.Lock()
			if epoch == 1 && c.fatal == nil {
				c.fatal = err
				c.changedLocked()
			}
			c.mu.Unlock()
			return
		}
		c.s.log.Warn("mqtt subscribe failed; retrying", "topic", c.s.topics.Cmd, "err", err)
		select {
		case <-time.After(retryDelay):
		case <-c.done:
			return
		}
		c.mu.Lock()
		current := c.epoch == epoch
		c.mu.Unlock()
		if !current || !c.paho.IsConnectionOpen() {
			return // the next connection's onConnect takes over
		}
	}
	c.mu.Lock()
	if epoch > c.readyEpoch {
		c.readyEpoch = epoch
		c.changedLocked()
	}
	c.mu.Unlock()
	c.kickState()
}

func (c *Client) subscribe() error {
	tok := c.paho.Subscribe(c.s.topics.Cmd, 1, nil)
	if err := c.wait(tok, c.s.connectTimeout); err != nil {
		return err
	}
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		return nil
	}
	switch qos, ok := st.Result()[c.s.topics.Cmd]; {
	case !ok:
		return fmt.Errorf("broker: no SUBACK result for %s", c.s.topics.Cmd)
	case qos == subackFailure:
		return fmt.Errorf("%w: the broker refused the subscription to %s: its ACL must let this drone's user (%q) read it",
			ErrNotAuthorized, c.s.topics.Cmd, c.s.username)
	case qos == 0:
		c.s.log.Warn("mqtt broker granted QoS 0 for commands: a command sent during a link drop may be lost", "topic", c.s.topics.Cmd)
	}
	return nil
}

func (c *Client) onConnectionLost(_ mqtt.Client, err error) {
	c.s.log.Warn("mqtt connection lost; reconnecting", "url", c.s.where(), "err", err)
}

// wait waits for tok, at most timeout, and returns its error.
func (c *Client) wait(tok mqtt.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("broker: no answer from the broker within %v", timeout)
	case <-c.done:
		return ErrClosed
	}
}

// onMessage is paho's handler for the command topic. It runs on paho's
// router goroutine, which must not block: it only queues.
func (c *Client) onMessage(_ mqtt.Client, m mqtt.Message) {
	p := m.Payload()
	if len(p) > MaxPayload {
		n := c.commandsDropped.Add(1)
		c.s.log.Warn("mqtt command dropped: larger than MaxPayload", "topic", m.Topic(), "bytes", len(p), "max", MaxPayload, "dropped", n)
		m.Ack()
		return
	}
	select {
	case c.cmds <- inbound{payload: p, ack: m.Ack}:
	default:
		n := c.commandsDropped.Add(1)
		c.s.log.Error("mqtt command dropped: onCommand is not keeping up", "queued", commandQueue, "dropped", n)
		m.Ack()
	}
}

// onStray handles a message on a topic the Client did not subscribe to
// (a broker that delivers an old session's subscriptions).
func (c *Client) onStray(_ mqtt.Client, m mqtt.Message) {
	c.s.log.Debug("mqtt message on an unexpected topic ignored", "topic", m.Topic())
	m.Ack()
}

// dispatch calls onCommand for each queued command, one at a time, and
// acknowledges it when onCommand returns.
func (c *Client) dispatch() {
	defer close(c.dispatchDone)
	for {
		select {
		case m := <-c.cmds:
			select {
			case <-c.stopDispatch:
				return // not acknowledged: the broker redelivers it
			default:
			}
			c.commands.Add(1)
			c.onCommand(m.payload)
			m.ack()
		case <-c.stopDispatch:
			return
		}
	}
}

// PublishState makes payload the drone's retained state (QoS 1) and waits
// until the broker acknowledges it, or a newer state, or ctx ends. The
// payload should describe the drone as online: the Client publishes it
// again after every reconnect, over the offline last will. While the link
// is down the state waits and only the newest one is sent when it
// returns; an error from ctx means it was not acknowledged yet, not that
// it will not be.
func (c *Client) PublishState(ctx context.Context, payload []byte) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	c.state = bytes.Clone(payload)
	c.stateGen++
	gen := c.stateGen
	c.mu.Unlock()
	c.kickState()
	for {
		c.mu.Lock()
		acked, closing, changed := c.ackedGen >= gen, c.closing, c.changed
		c.mu.Unlock()
		switch {
		case acked:
			return nil
		case closing:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("broker: state on %s not acknowledged yet (it is sent when the link allows, unless a newer state replaces it): %w",
				c.s.topics.State, ctx.Err())
		}
	}
}

func (c *Client) kickState() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// changedLocked wakes everyone waiting on c.changed. c.mu must be held.
func (c *Client) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// stateLoop is the only publisher of the state topic until Close. It
// publishes the current state when the broker may not hold it: a new
// state, or a new connection (after which the broker may hold the will).
// Within one connection states arrive in the order published; across
// connections nothing old is ever sent again, since the store does not
// keep state messages (see options), so an older state cannot overwrite
// a newer one.
func (c *Client) stateLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			gen, p, epoch, gone := c.stateGen, c.state, c.epoch, c.epochGone
			need := c.readyEpoch == epoch && (c.sentEpoch != epoch || c.sentGen != gen)
			c.mu.Unlock()
			if !need || !c.paho.IsConnectionOpen() {
				break // the next PublishState or connection kicks
			}
			tok := c.paho.Publish(c.s.topics.State, 1, true, p)
			c.mu.Lock()
			c.sentEpoch, c.sentGen = epoch, gen
			c.mu.Unlock()
			go c.awaitState(tok, gen, gone)
		}
	}
}

// awaitState records the broker's acknowledgement of state generation
// gen. A token of a lost connection never completes: gone (closed when
// the next connection is up) ends the wait, and the state loop publishes
// again on the new connection.
func (c *Client) awaitState(tok mqtt.Token, gen uint64, gone <-chan struct{}) {
	select {
	case <-tok.Done():
	case <-gone:
		return
	case <-c.done:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := tok.Error(); err != nil {
		c.s.log.Warn("mqtt state publish failed; retrying", "topic", c.s.topics.State, "err", err)
		if c.sentGen == gen {
			c.sentEpoch = 0 // publish it again
		}
		time.AfterFunc(retryDelay, c.kickState)
		return
	}
	if gen > c.ackedGen {
		c.ackedGen = gen
		c.changedLocked()
	}
}

// PublishEvent publishes payload on the events topic (QoS 1) and waits for
// the broker's acknowledgement or the end of ctx. While the link is down
// the event waits and is sent when it returns, even if ctx has ended by
// then (PublishEvent then returns once it is sent again): events are
// delivered at least once, normally in order.
func (c *Client) PublishEvent(ctx context.Context, payload []byte) error {
	switch started, closing := c.started(); {
	case closing:
		return ErrClosed
	case !started:
		return ErrNotStarted
	}
	p := bytes.Clone(payload)
	// paho's Publish can block (up to writeTimeout) behind a slow write:
	// run it aside so that ctx is honoured.
	toks := make(chan mqtt.Token, 1)
	go func() { toks <- c.paho.Publish(c.s.topics.Events, 1, false, p) }()
	var tok mqtt.Token
	select {
	case tok = <-toks:
	case <-ctx.Done():
		return fmt.Errorf("broker: event on %s not sent yet: %w", c.s.topics.Events, ctx.Err())
	}
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			if errors.Is(err, mqtt.ErrNotConnected) {
				return ErrClosed // paho is disconnected only after Close
			}
			return fmt.Errorf("broker: event on %s: %w", c.s.topics.Events, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: event on %s not acknowledged yet (it is sent again on reconnect): %w", c.s.topics.Events, ctx.Err())
	}
}

// PublishTelemetry queues payload for the telemetry topic (QoS 0) and
// returns at once. When the link is down it drops the message, counts it
// and returns ErrNotConnected; when 32 messages are already queued it
// drops the oldest. Do not log each drop: Stats counts them.
func (c *Client) PublishTelemetry(payload []byte) error { return c.telemetry.publish(payload) }

// PublishCamera is PublishTelemetry for the camera topic (JPEG frames);
// it queues at most 4 frames.
func (c *Client) PublishCamera(payload []byte) error { return c.camera.publish(payload) }

// Stats returns the Client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Connected:        c.paho.IsConnectionOpen(),
		Reconnects:       c.reconnects.Load(),
		Commands:         c.commands.Load(),
		CommandsDropped:  c.commandsDropped.Load(),
		TelemetryDropped: c.telemetry.dropped.Load(),
		CameraDropped:    c.camera.dropped.Load(),
	}
}

// Topics returns the Client's topics.
func (c *Client) Topics() TopicSet { return c.s.topics }

func (c *Client) isClosing() bool {
	_, closing := c.started()
	return closing
}

// started reports whether Start was called, and whether Close was.
func (c *Client) started() (started, closing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.onCommand != nil, c.closing
}

// Close says goodbye: it lets the command being handled finish (and
// acknowledges it), publishes the offline state (Config.WillPayload)
// retained and waits for the broker's acknowledgement, then disconnects
// cleanly, so that the broker discards the last will. Commands still
// queued are not acknowledged: the broker delivers them again on the
// drone's next connection. ctx bounds the wait; if it ends first, Close
// still disconnects and returns an error saying what was left undone.
// Publish calls after Close return ErrClosed. Close must not be called
// from onCommand. Closing a closed Client does nothing.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	started := c.onCommand != nil
	c.changedLocked()
	c.mu.Unlock()
	close(c.stopDispatch)
	close(c.done)
	if !started {
		close(c.dispatchDone) // no dispatcher ever ran
	}

	var errs []error
	select {
	case <-c.dispatchDone:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("broker: close: onCommand still running: %w", ctx.Err()))
	}
	// The state loop may have a publish in paho's hands: let it go out
	// first, so that the offline state is the last one.
	loops := make(chan struct{})
	go func() { c.wg.Wait(); close(loops) }()
	select {
	case <-loops:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("broker: close: publishers still busy: %w", ctx.Err()))
	}
	if c.paho.IsConnectionOpen() {
		tok := c.paho.Publish(c.s.topics.State, 1, true, c.s.will)
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				errs = append(errs, fmt.Errorf("broker: close: offline state on %s: %w", c.s.topics.State, err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("broker: close: offline state on %s not acknowledged: %w", c.s.topics.State, ctx.Err()))
		}
	}
	c.paho.Disconnect(uint(disconnectQuiesce / time.Millisecond))
	c.mu.Lock()
	connected := c.epoch > 0
	c.mu.Unlock()
	if connected {
		c.s.log.Info("mqtt disconnected", "url", c.s.where(), "stats", c.Stats())
	}
	return errors.Join(errs...)
}

// store is paho's message store minus the publishes on one topic (the
// state), which paho would otherwise send again on reconnect, possibly
// after a newer state.
type store struct {
	mqtt.Store
	skip string
}

func (s *store) Put(key string, m packets.ControlPacket) {
	if p, ok := m.(*packets.PublishPacket); ok && p.TopicName == s.skip {
		return
	}
	s.Store.Put(key, m)
}
