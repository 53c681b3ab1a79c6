package push

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/images/labels"
)

// Defaults of Config's zero fields.
const (
	DefaultApp           = labels.DefaultApp
	DefaultTimeout       = 5 * time.Minute
	DefaultStatusTimeout = 15 * time.Second
)

// Sentinel errors; branch with errors.Is.
var (
	// ErrFailed: the drone's final event for the command is not a
	// success (refused, failed, reverted, aborted). The error is an
	// *OutcomeError.
	ErrFailed = errors.New("push: the command did not succeed")
	// ErrTimeout: no final event (Run) or no fresh state (Status) came
	// within Config.Timeout. The drone may still be working, or have the
	// command queued.
	ErrTimeout = errors.New("push: timed out")
)

// Config says which broker and drone, and how to sign. Broker, Drone and
// Key are required; every other zero value means the default documented on
// the field.
type Config struct {
	// Broker is the MQTT broker's URL: tcp://host:port, or ssl://host:port
	// (also tls://, mqtts://) with CAFile, CertFile and KeyFile, or
	// ws://, wss://. A clustered broker's nodes are listed
	// comma-separated (all plain or all TLS): a connection tries them in
	// order, and the next one when its node goes down.
	Broker string
	// Username and Password authenticate to the broker; "" sends none.
	Username, Password string
	// CAFile is the PEM file of the CAs that sign the broker's
	// certificate; "" trusts the system's roots. CertFile and KeyFile are
	// the ground's PEM client certificate and key (both or neither). Only
	// with a TLS Broker URL.
	CAFile, CertFile, KeyFile string
	// Drone is the target drone's id (broker.CheckDrone).
	Drone string
	// App is the app an update or rollback is about; "" means
	// DefaultApp ("flight"). Status sends none.
	App string
	// Key signs the commands (command.ReadPrivateKey).
	Key ed25519.PrivateKey
	// KeyID is the id the drone trusts Key under; "" means
	// command.KeyID of its public key.
	KeyID string
	// TTL is the command's lifetime, whole seconds up to
	// command.DefaultMaxLifetime; 0 means DefaultTTL (2 min). A drone that
	// gets the command later (it was offline) refuses it as expired.
	TTL time.Duration
	// Timeout is how long to follow the command after sending it; 0 means
	// DefaultTimeout (5 min) for Run and DefaultStatusTimeout (15 s) for
	// Status.
	Timeout time.Duration
	// OnEvent receives each event of this command as it arrives, on Run's
	// goroutine; nil means none.
	OnEvent func(report.Event)
	// OnSent is called once the broker has acknowledged the command, with
	// the command and the time it was sent (Result.Sent); nil means none.
	OnSent func(c command.Command, sent time.Time)
	// Session, when not "", makes Watch's connection a persistent MQTT
	// session under this client id: the broker keeps its subscriptions
	// and the QoS 1 messages that come while it is away, and delivers them
	// when it connects again under the same id (a ground that restarts
	// misses no drone's event). One connection at a time may use an id.
	// "" means a clean session under a fresh id, as Run always uses:
	// nothing of it outlives the connection.
	Session string
	// Log receives progress and warnings (the drone is offline, the link
	// dropped); nil discards them.
	Log *slog.Logger
	// Now is the ground's clock (for signing and Result.Sent); nil means
	// time.Now.
	Now func() time.Time
}

// ConfigError is a Config setting that cannot work. Field is the Config
// field's name ("Broker", "Drone", "CertFile"...).
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "push: Config." + e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Request is one command to send.
type Request struct {
	// Kind is command.KindUpdate or command.KindRollback (Status sends
	// status commands).
	Kind command.Kind
	// Image is the release, pinned: NAME[:TAG]@sha256:<hex> (Resolve).
	// Required for an update; for a rollback "" means the drone's previous
	// committed release.
	Image string
	// Strategy is "" (the image's label decides) or a strategy.Strategy.
	Strategy string
	// ID is the command's idempotency key; "" means one is generated.
	ID string
}

// Result is what happened to a command. Run returns what it has so far
// with its error too.
type Result struct {
	Command command.Command // as sent, signed
	Sent    time.Time       // when it was published (zero: not sent)
	Events  []report.Event  // this command's events, in arrival order
	Final   report.Event    // the final one; zero if none came
}

// OutcomeError is a command whose final event is not a success. It wraps
// ErrFailed.
type OutcomeError struct {
	Drone   string
	Command command.Command
	Final   report.Event
}

// Outcome is one word for how the command ended: refused, failed,
// reverted, aborted, or the agent's outcome as it gave it.
func (e *OutcomeError) Outcome() string {
	switch {
	case e.Final.Phase == report.PhaseRefused || e.Final.Phase == report.PhaseFailed:
		return e.Final.Phase
	case e.Final.Outcome != "":
		return e.Final.Outcome
	}
	return e.Final.Phase
}

// Reason is the agent's explanation, or what the outcome means when it
// gave none.
func (e *OutcomeError) Reason() string {
	if e.Final.Error != "" {
		return e.Final.Error
	}
	switch e.Final.Outcome {
	case report.OutcomeReverted:
		return "the new release took the hardware, then control went back to the old one, which flies"
	case report.OutcomeAborted:
		return "stopped before cut-over; the old release kept flying"
	case report.OutcomeRefused:
		return "refused before the new release started"
	}
	if e.Final.Phase == report.PhaseRecovered {
		return "the agent restarted during the update"
	}
	return "the agent gave no reason: see its log"
}

func (e *OutcomeError) Error() string {
	return fmt.Sprintf("push: %s %s on drone %s: %s: %s", e.Command.Kind, e.Command.ID, e.Drone, e.Outcome(), e.Reason())
}

// Unwrap returns ErrFailed.
func (e *OutcomeError) Unwrap() error { return ErrFailed }

// settings is a checked Config with its defaults.
type settings struct {
	cfg    Config
	urls   []*url.URL
	tls    *tls.Config
	topics broker.TopicSet
	log    *slog.Logger
	now    func() time.Time
}

func (cfg Config) settings() (*settings, error) {
	if err := broker.CheckDrone(cfg.Drone); err != nil {
		return nil, &ConfigError{"Drone", err}
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, &ConfigError{"Key", errors.New("no ed25519 private key: load it with command.ReadPrivateKey (dronectl keygen makes one)")}
	}
	s, err := cfg.linkSettings()
	if err != nil {
		return nil, err
	}
	s.log = s.log.With("drone", cfg.Drone)
	s.topics = broker.Topics(cfg.Drone)
	return s, nil
}

// linkSettings checks what a connection to the broker needs, and nothing
// about a drone or a key.
func (cfg Config) linkSettings() (*settings, error) {
	s := &settings{cfg: cfg, log: cfg.Log, now: cfg.Now}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, &ConfigError{"Password", errors.New("set without Username: MQTT sends a password only with a user name")}
	}
	if cfg.Timeout < 0 {
		return nil, &ConfigError{"Timeout", fmt.Errorf("%s is negative: give a duration, or 0 for the default", cfg.Timeout)}
	}
	var err error
	if s.urls, s.tls, err = checkBroker(cfg.Broker, cfg.CAFile, cfg.CertFile, cfg.KeyFile); err != nil {
		return nil, err
	}
	if s.cfg.App == "" {
		s.cfg.App = DefaultApp
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func (s *settings) sign(c command.Command) (command.Command, error) {
	return Signer{Key: s.cfg.Key, KeyID: s.cfg.KeyID, TTL: s.cfg.TTL, Now: s.now}.Sign(c)
}

// placeholder stands for an image Resolve has not pinned yet, in Check.
const placeholder = "check.invalid/image@sha256:0000000000000000000000000000000000000000000000000000000000000000"

// Check reports, without the network, what Run would refuse before sending:
// a *ConfigError or a *command.FieldError. req.Image may still be a tag
// (Resolve pins it later); a pinned or malformed one is checked. The zero
// Request checks cfg alone (as Status uses it).
func Check(cfg Config, req Request) error {
	s, err := cfg.settings()
	if err != nil || req == (Request{}) {
		return err
	}
	_, err = s.command(req, true)
	return err
}

// command builds and signs req's command. With draft, an Image that is
// only a tag is replaced by a placeholder pinned one.
func (s *settings) command(req Request, draft bool) (command.Command, error) {
	switch req.Kind {
	case command.KindUpdate, command.KindRollback:
	case command.KindStatus:
		return command.Command{}, &command.FieldError{Field: "kind", Msg: "status has no final event to follow: use Status"}
	case "":
		return command.Command{}, &command.FieldError{Field: "kind", Msg: "missing: use update or rollback"}
	default:
		return command.Command{}, &command.FieldError{Field: "kind", Msg: fmt.Sprintf("%q: Run sends update or rollback", req.Kind)}
	}
	image := req.Image
	if draft && image != "" && !strings.Contains(image, "@") {
		image = placeholder
	}
	return s.sign(command.Command{ID: req.ID, Kind: req.Kind, Drone: s.cfg.Drone, App: s.cfg.App, Image: image, Strategy: req.Strategy})
}

// Run sends req to cfg.Drone and follows it to its final event: it
// connects, subscribes to the drone's events and state (QoS 1), publishes
// the signed command (QoS 1), passes each event of this command to
// cfg.OnEvent, and returns at the final one. The error is nil only if the
// final event is a success (a release deployed or an update committed); an
// *OutcomeError (ErrFailed) with the agent's reason otherwise; ErrTimeout
// if none comes within cfg.Timeout; ctx's error if ctx ends first. A bad
// Config is a *ConfigError and a bad Request a *command.FieldError, both
// before anything is sent.
func Run(ctx context.Context, cfg Config, req Request) (Result, error) {
	s, err := cfg.settings()
	if err != nil {
		return Result{}, err
	}
	c, err := s.command(req, false)
	if err != nil {
		return Result{}, err
	}
	res := Result{Command: c}
	f, err := s.open(ctx)
	if err != nil {
		return res, err
	}
	defer f.l.close()
	if res.Sent, err = f.send(ctx, c); err != nil {
		return res, err
	}
	timeout := s.cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m := <-f.l.msgs:
			if m.Topic == s.topics.State {
				f.state(m)
				continue
			}
			ev, ok := f.event(m, c.ID)
			if !ok {
				continue
			}
			res.Events = append(res.Events, ev)
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(ev)
			}
			if !Ends(ev) {
				continue
			}
			res.Final = ev
			if Succeeded(ev) {
				return res, nil
			}
			return res, &OutcomeError{Drone: s.cfg.Drone, Command: c, Final: ev}
		case <-timer.C:
			last := "no event of it came"
			if n := len(res.Events); n > 0 {
				last = "the last event was " + res.Events[n-1].Phase
			}
			return res, fmt.Errorf("%w: no final event for %s %s from drone %s within %s (%s): the drone may still be working on it: check fleet/%s/state (dronectl status)%s",
				ErrTimeout, c.Kind, c.ID, s.cfg.Drone, timeout, last, s.cfg.Drone, f.stateHint(c))
		case <-ctx.Done():
			return res, fmt.Errorf("push: stopped following %s %s: %w: the drone may still be working on it: check fleet/%s/state (dronectl status)",
				c.Kind, c.ID, ctx.Err(), s.cfg.Drone)
		}
	}
}

// Status asks cfg.Drone for its state (a status command) and returns the
// first fresh state it publishes after that. If none comes within
// cfg.Timeout (0: DefaultStatusTimeout) it returns the retained state (the
// zero State if the broker has none) with ErrTimeout; if the drone refuses
// the command, the retained state with an *OutcomeError.
func Status(ctx context.Context, cfg Config) (report.State, error) {
	s, err := cfg.settings()
	if err != nil {
		return report.State{}, err
	}
	c, err := s.sign(command.Command{Kind: command.KindStatus, Drone: s.cfg.Drone})
	if err != nil {
		return report.State{}, err
	}
	f, err := s.open(ctx)
	if err != nil {
		return report.State{}, err
	}
	defer f.l.close()
	if _, err := f.send(ctx, c); err != nil {
		return report.State{}, err
	}
	timeout := s.cfg.Timeout
	if timeout == 0 {
		timeout = DefaultStatusTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	retained := func() report.State {
		if f.last == nil {
			return report.State{}
		}
		return *f.last
	}
	for {
		select {
		case m := <-f.l.msgs:
			if m.Topic == s.topics.State {
				if st, ok := f.state(m); ok && !m.Retained {
					return st, nil
				}
				continue
			}
			if ev, ok := f.event(m, c.ID); ok && ev.Final() {
				return retained(), &OutcomeError{Drone: s.cfg.Drone, Command: c, Final: ev}
			}
		case <-timer.C:
			return retained(), fmt.Errorf("%w: drone %s did not answer the status command within %s%s", ErrTimeout, s.cfg.Drone, timeout, f.stateHint(c))
		case <-ctx.Done():
			return retained(), fmt.Errorf("push: status of drone %s: %w", s.cfg.Drone, ctx.Err())
		}
	}
}

// Ends reports whether e ends its command: a final event, or the agent's
// report after a restart that settled the command's update.
func Ends(e report.Event) bool {
	return e.Final() || e.Phase == report.PhaseRecovered
}

// Succeeded reports whether e, which ends its command, left the requested
// release flying.
func Succeeded(e report.Event) bool {
	if e.Phase == report.PhaseRecovered {
		return strings.HasPrefix(e.Outcome, report.OutcomeCommitted)
	}
	return e.Succeeded()
}

// follower is one command's connection: the link and what it has seen of
// the drone's state.
type follower struct {
	s       *settings
	l       *link
	last    *report.State // the newest state, nil before one came
	offline bool          // warned that the drone is offline
}

// open connects and follows the drone's events and state.
func (s *settings) open(ctx context.Context) (*follower, error) {
	l, err := dial(ctx, s, "")
	if err != nil {
		return nil, err
	}
	for _, topic := range []string{s.topics.Events, s.topics.State} {
		if err := l.follow(ctx, topic); err != nil {
			l.close()
			return nil, err
		}
	}
	return &follower{s: s, l: l}, nil
}

// send publishes c and returns when it was sent.
func (f *follower) send(ctx context.Context, c command.Command) (time.Time, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return time.Time{}, fmt.Errorf("push: encode command: %w", err)
	}
	sent := f.s.now()
	if err := f.l.publish(ctx, f.s.topics.Cmd, b); err != nil {
		return time.Time{}, err
	}
	attrs := []any{"command", c.ID, "kind", c.Kind, "topic", f.s.topics.Cmd, "expires", c.Expires.Format(time.RFC3339)}
	if c.Image != "" {
		attrs = append(attrs, "image", c.Image)
	}
	f.s.log.Info("sent", attrs...)
	if f.s.cfg.OnSent != nil {
		f.s.cfg.OnSent(c, sent)
	}
	return sent, nil
}

// state records a state message and warns when the drone is offline.
func (f *follower) state(m Message) (report.State, bool) {
	var st report.State
	if err := json.Unmarshal(m.Payload, &st); err != nil {
		f.s.log.Warn("unreadable state", "topic", m.Topic, "err", err)
		return st, false
	}
	f.last = &st
	switch {
	case !st.Online && !f.offline:
		f.offline = true
		f.s.log.Warn("the drone is offline: the broker keeps the command in the drone's session and delivers it when the drone reconnects; the drone refuses it if that is after it expires")
	case st.Online && f.offline:
		f.offline = false
		f.s.log.Info("the drone is online")
	}
	return st, true
}

// event decodes an event message and reports whether it belongs to
// command id.
func (f *follower) event(m Message, id string) (report.Event, bool) {
	var ev report.Event
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		f.s.log.Warn("unreadable event", "topic", m.Topic, "err", err)
		return ev, false
	}
	if ev.Command != id {
		f.s.log.Debug("event of another command", "command", ev.Command, "phase", ev.Phase)
		return ev, false
	}
	return ev, true
}

// stateHint says what the drone's state tells about a missing answer.
func (f *follower) stateHint(c command.Command) string {
	switch {
	case f.last == nil:
		return fmt.Sprintf("; the broker holds no state of drone %s: check the drone id, and that its agent has connected to this broker", f.s.cfg.Drone)
	case !f.last.Online:
		return fmt.Sprintf("; the drone is offline: the broker delivers the command when it reconnects, if before %s", c.Expires.Format(time.RFC3339))
	case f.last.Updating != "":
		return "; the drone reports an update in progress: " + f.last.Updating
	}
	return ""
}
