package broker_test

// Integration tests against a real Mosquitto (brokertest.Start): they skip
// without it, and fail without it when CI is set.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/broker/brokertest"
)

// wait bounds every expected message: generous for a loaded 2-core
// machine; on loopback they take well under a millisecond.
const wait = 5 * time.Second

// testLog returns a logger that keeps the Client's log and prints it if
// the test fails (t.Log cannot be used: paho's goroutines may log after
// the test returns).
func testLog(t testing.TB) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("client log:\n%s", buf.String())
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connect connects cfg with a test log and closes the client when the
// test ends.
func connect(t testing.TB, cfg broker.Config, onCommand func([]byte)) *broker.Client {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = testLog(t)
	}
	c, err := broker.Connect(ctxFor(t, 10*time.Second), cfg, onCommand)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(ctxFor(t, 5*time.Second)) })
	return c
}

// commands records onCommand's calls and checks that they never overlap.
type commands struct {
	ch      chan []byte
	active  atomic.Int32
	overlap atomic.Bool
}

func newCommands() *commands { return &commands{ch: make(chan []byte, 1024)} }

func (r *commands) on(p []byte) {
	if r.active.Add(1) > 1 {
		r.overlap.Store(true)
	}
	r.ch <- p
	r.active.Add(-1)
}

func (r *commands) next(t testing.TB) []byte {
	t.Helper()
	select {
	case p := <-r.ch:
		return p
	case <-time.After(wait):
		t.Fatalf("no command within %v", wait)
		return nil
	}
}

func (r *commands) none(t testing.TB) {
	t.Helper()
	select {
	case p := <-r.ch:
		t.Fatalf("unexpected command %q", p)
	default:
	}
}

// retained returns what a new subscriber gets on topic: the retained
// message, or nil if there is none (after a marker published to a
// topic of its own, the retained message would have come first).
func retained(t testing.TB, m *brokertest.Mosquitto, user, topic string) []byte {
	t.Helper()
	msg, ok := first(t, m, user, topic)
	if !ok {
		return nil
	}
	if !msg.Retained {
		t.Fatalf("first message on %s is not retained: %q", topic, msg.Payload)
	}
	return msg.Payload
}

// first returns the first message a new subscriber gets on topic before
// a marker published to a topic of its own, if any.
func first(t testing.TB, m *brokertest.Mosquitto, user, topic string) (brokertest.Message, bool) {
	t.Helper()
	p := m.Peer(t, user)
	ch := p.MustSubscribe(t, topic, 1)
	marker := fmt.Sprintf("fleet/brokertest-marker-%d", time.Now().UnixNano())
	mk := p.MustSubscribe(t, marker, 1)
	p.MustPublish(t, marker, 1, false, []byte("marker"))
	brokertest.Receive(t, mk, wait)
	defer p.Close()
	select {
	case msg := <-ch:
		return msg, true
	default:
		return brokertest.Message{}, false
	}
}

func payloadIs(want []byte) func(brokertest.Message) bool {
	return func(m brokertest.Message) bool { return bytes.Equal(m.Payload, want) }
}

func TestConnectPublishes(t *testing.T) {
	m := brokertest.Start(t, nil)
	cmds := newCommands()
	c := connect(t, m.Config("d1"), cmds.on)
	tp := broker.Topics("d1")
	if c.Topics() != tp {
		t.Fatalf("Topics() = %+v", c.Topics())
	}
	if got := retained(t, m, "", tp.State); !bytes.Equal(got, broker.DefaultOnline("d1")) {
		t.Fatalf("retained state after Connect = %q, want %s", got, broker.DefaultOnline("d1"))
	}
	if s := c.Stats(); !s.Connected || s.Reconnects != 0 {
		t.Fatalf("Stats = %+v", s)
	}

	ground := m.Peer(t, "")
	all := ground.MustSubscribe(t, "fleet/d1/+", 1)
	brokertest.Receive(t, all, wait) // the retained online state
	ctx := ctxFor(t, wait)
	state := []byte(`{"drone":"d1","online":true,"apps":{"flight":"v1"}}`)
	if err := c.PublishState(ctx, state); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishEvent(ctx, []byte(`{"phase":"pulled"}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishTelemetry([]byte(`{"alt":1.5}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishCamera([]byte("\xff\xd8jpeg")); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		topic string
		qos   byte
		p     string
	}{
		{tp.State, 1, string(state)},
		{tp.Events, 1, `{"phase":"pulled"}`},
		{tp.Telemetry, 0, `{"alt":1.5}`},
		{tp.Camera, 0, "\xff\xd8jpeg"},
	}
	// Telemetry and camera have a sender each: their order is not fixed.
	last := map[string]brokertest.Message{}
	brokertest.ReceiveUntil(t, all, wait, func(m brokertest.Message) bool {
		last[m.Topic] = m
		return len(last) == len(want)
	})
	for _, w := range want {
		if got := last[w.topic]; string(got.Payload) != w.p || got.QoS != w.qos {
			t.Errorf("%s: got %q QoS %d, want %q QoS %d", w.topic, got.Payload, got.QoS, w.p, w.qos)
		}
	}
	if got := retained(t, m, "", tp.State); !bytes.Equal(got, state) {
		t.Fatalf("retained state = %q, want %q", got, state)
	}

	// Concurrent publishers (for the race detector) and the newest state
	// wins.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				if err := c.PublishEvent(ctx, fmt.Appendf(nil, `{"i":%d,"j":%d}`, i, j)); err != nil {
					t.Error(err)
				}
				_ = c.PublishTelemetry([]byte("t"))
				_ = c.Stats()
			}
		})
	}
	for j := range 20 {
		if err := c.PublishState(ctx, fmt.Appendf(nil, `{"drone":"d1","online":true,"n":%d}`, j)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got := retained(t, m, "", tp.State); string(got) != `{"drone":"d1","online":true,"n":19}` {
		t.Fatalf("retained state = %q, want the last one", got)
	}
	cmds.none(t)
}

func TestCommandsInOrder(t *testing.T) {
	m := brokertest.Start(t, nil)
	cmds := newCommands()
	c := connect(t, m.Config("d1"), cmds.on)
	ground := m.Peer(t, "")
	const n = 200
	for i := range n {
		ground.MustPublish(t, "fleet/d1/cmd", 1, false, fmt.Appendf(nil, `{"id":"c%d"}`, i))
	}
	for i := range n {
		if got, want := string(cmds.next(t)), fmt.Sprintf(`{"id":"c%d"}`, i); got != want {
			t.Fatalf("command %d = %s, want %s", i, got, want)
		}
	}
	if cmds.overlap.Load() {
		t.Error("onCommand ran on two goroutines at once")
	}
	ground.MustPublish(t, "fleet/d2/cmd", 1, false, []byte("not mine"))
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("mine"))
	if got := cmds.next(t); string(got) != "mine" {
		t.Fatalf("got %q, want only this drone's commands", got)
	}
	if s := c.Stats(); s.Commands != n+1 || s.CommandsDropped != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestOversizedCommandDropped(t *testing.T) {
	m := brokertest.Start(t, nil)
	cmds := newCommands()
	c := connect(t, m.Config("d1"), cmds.on)
	ground := m.Peer(t, "")
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, bytes.Repeat([]byte("x"), broker.MaxPayload+1))
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, bytes.Repeat([]byte("y"), broker.MaxPayload))
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("small"))
	if got := cmds.next(t); len(got) != broker.MaxPayload || got[0] != 'y' {
		t.Fatalf("first command: %d bytes of %q; want the one of exactly MaxPayload", len(got), got[:1])
	}
	if got := cmds.next(t); string(got) != "small" {
		t.Fatalf("second command %q", got)
	}
	if s := c.Stats(); s.CommandsDropped != 1 || s.Commands != 2 {
		t.Fatalf("Stats = %+v, want 1 dropped, 2 passed on", s)
	}
}

// A link that dies without a DISCONNECT: the broker publishes the last
// will; while down, QoS 0 is dropped and QoS 1 waits; on reconnect the
// newest state replaces the will, waiting events go out, and commands
// flow again.
func TestLastWillAndReconnect(t *testing.T) {
	m := brokertest.Start(t, nil)
	proxy := brokertest.NewProxy(t, m.Addr)
	cfg := m.Config("d1")
	cfg.URL = proxy.URL
	cfg.WillPayload = []byte(`{"drone":"d1","online":false,"why":"lost"}`)
	cmds := newCommands()
	c := connect(t, cfg, cmds.on)
	tp := c.Topics()

	ground := m.Peer(t, "")
	states := ground.MustSubscribe(t, tp.State, 1)
	events := ground.MustSubscribe(t, tp.Events, 1)
	brokertest.ReceiveUntil(t, states, wait, payloadIs(broker.DefaultOnline("d1")))

	proxy.Refuse(true)
	cut := time.Now()
	proxy.Cut()
	brokertest.ReceiveUntil(t, states, wait, payloadIs(cfg.WillPayload))
	t.Logf("last will seen %v after the cut", time.Since(cut).Round(time.Millisecond))
	if got := retained(t, m, "", tp.State); !bytes.Equal(got, cfg.WillPayload) {
		t.Fatalf("retained state while the link is down = %q, want the will", got)
	}

	deadline := time.Now().Add(wait)
	for c.Stats().Connected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.PublishTelemetry([]byte("t")); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("telemetry while down: %v, want ErrNotConnected", err)
	}
	if err := c.PublishCamera([]byte("f")); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("camera while down: %v, want ErrNotConnected", err)
	}
	if err := c.PublishEvent(ctxFor(t, 50*time.Millisecond), []byte("e-down")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("event while down: %v, want a ctx error (and the event sent later)", err)
	}
	newest := []byte(`{"drone":"d1","online":true,"apps":{"flight":"v2"}}`)
	stateDone := make(chan error, 1)
	go func() { stateDone <- c.PublishState(ctxFor(t, 3*wait), newest) }()
	if err := c.PublishState(ctxFor(t, 50*time.Millisecond), []byte(`{"older":true}`)); !errors.Is(err, context.DeadlineExceeded) {
		// The goroutine's state may be the newer one: either way only
		// one of them may end up retained, checked below.
		t.Logf("older state while down: %v", err)
	}
	if err := c.PublishState(ctxFor(t, 50*time.Millisecond), newest); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("state while down: %v, want a ctx error", err)
	}

	proxy.Refuse(false)
	back := time.Now()
	if err := <-stateDone; err != nil {
		t.Fatalf("state after reconnect: %v", err)
	}
	t.Logf("reconnected and state acknowledged %v after the link returned", time.Since(back).Round(time.Millisecond))
	got := brokertest.ReceiveUntil(t, states, wait, payloadIs(newest))
	for _, msg := range got {
		if string(msg.Payload) == `{"older":true}` || bytes.Equal(msg.Payload, broker.DefaultOnline("d1")) {
			t.Errorf("after reconnect the ground saw %q: only the newest state should be sent", msg.Payload)
		}
	}
	if got := brokertest.Receive(t, events, wait); string(got.Payload) != "e-down" {
		t.Fatalf("event published while down: got %q", got.Payload)
	}
	s := c.Stats()
	if !s.Connected || s.Reconnects != 1 || s.TelemetryDropped != 1 || s.CameraDropped != 1 {
		t.Fatalf("Stats = %+v", s)
	}
	ground.MustPublish(t, tp.Cmd, 1, false, []byte("after"))
	if got := cmds.next(t); string(got) != "after" {
		t.Fatalf("command after reconnect: %q", got)
	}
}

func TestCloseLeavesOfflineRetained(t *testing.T) {
	m := brokertest.Start(t, nil)
	cfg := m.Config("d1")
	cfg.Log = testLog(t)
	c, err := broker.Connect(ctxFor(t, wait), cfg, func([]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	ground := m.Peer(t, "")
	states := ground.MustSubscribe(t, "fleet/d1/state", 1)
	brokertest.Receive(t, states, wait)
	if err := c.Close(ctxFor(t, wait)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := brokertest.Receive(t, states, wait); !bytes.Equal(got.Payload, broker.DefaultOffline("d1")) {
		t.Fatalf("on Close the ground saw %q", got.Payload)
	}
	if got := retained(t, m, "", "fleet/d1/state"); !bytes.Equal(got, broker.DefaultOffline("d1")) {
		t.Fatalf("retained after Close = %q", got)
	}
	// A clean DISCONNECT: the broker discards the will, so nothing more.
	if !strings.Contains(m.Log(), "skyswap-agent-d1 disconnected.") {
		t.Errorf("mosquitto did not log a clean disconnect:\n%s", m.Log())
	}
	select {
	case got := <-states:
		t.Fatalf("after Close the ground saw %q", got.Payload)
	case <-time.After(100 * time.Millisecond):
	}
	ctx := ctxFor(t, wait)
	for name, err := range map[string]error{
		"state":     c.PublishState(ctx, []byte("{}")),
		"event":     c.PublishEvent(ctx, []byte("{}")),
		"telemetry": c.PublishTelemetry(nil),
		"camera":    c.PublishCamera(nil),
		"close":     c.Close(ctx),
	} {
		if want := broker.ErrClosed; name == "close" && err != nil || name != "close" && !errors.Is(err, want) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
}

// Restarting the broker (no persistence: it forgets sessions and retained
// messages): the client reconnects, subscribes again and publishes its
// state again.
func TestReconnectAfterBrokerRestart(t *testing.T) {
	m := brokertest.Start(t, nil)
	cmds := newCommands()
	c := connect(t, m.Config("d1"), cmds.on)
	state := []byte(`{"drone":"d1","online":true,"apps":{"flight":"v1"}}`)
	if err := c.PublishState(ctxFor(t, wait), state); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m.Restart()
	deadline := time.Now().Add(2 * wait)
	for c.Stats().Reconnects == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Stats().Reconnects == 0 {
		t.Fatalf("no reconnect within %v of the restart", 2*wait)
	}
	t.Logf("reconnected %v after the restart began", time.Since(start).Round(time.Millisecond))
	// The state comes back once the subscription is granted; then a
	// command reaches the drone.
	var got []byte
	for time.Now().Before(deadline) {
		// A live state first: the client published it while this
		// subscriber was joining; the next one sees it retained.
		if msg, ok := first(t, m, "", "fleet/d1/state"); ok && msg.Retained {
			got = msg.Payload
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !bytes.Equal(got, state) {
		t.Fatalf("retained state after restart = %q, want %q", got, state)
	}
	m.Peer(t, "").MustPublish(t, "fleet/d1/cmd", 1, false, []byte("after restart"))
	if got := cmds.next(t); string(got) != "after restart" {
		t.Fatalf("command %q", got)
	}
}

// Commands are acknowledged after onCommand returns, in a persistent
// session: one queued but not handled at Close, and one sent while the
// drone is away, both reach the next connection.
func TestCommandsSurviveClose(t *testing.T) {
	m := brokertest.Start(t, nil)
	release := make(chan struct{})
	first := make(chan []byte, 10)
	c := connect(t, m.Config("d1"), func(p []byte) {
		first <- p
		<-release
	})
	ground := m.Peer(t, "")
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("c1"))
	if got := <-first; string(got) != "c1" {
		t.Fatalf("got %q", got)
	}
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("c2")) // queued behind c1
	time.Sleep(50 * time.Millisecond)                             // let it reach the client's queue
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctxFor(t, wait)) }()
	// Once Close has begun, no further command is handled: then let c1
	// finish (it is acknowledged); c2 is not handled, so not acknowledged.
	for !errors.Is(c.PublishTelemetry(nil), broker.ErrClosed) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("c3")) // while away

	cmds := newCommands()
	connect(t, m.Config("d1"), cmds.on)
	if got := cmds.next(t); string(got) != "c2" {
		t.Fatalf("first command on the next connection: %q, want c2 (not acknowledged before Close)", got)
	}
	if got := cmds.next(t); string(got) != "c3" {
		t.Fatalf("second command: %q, want c3 (sent while away)", got)
	}
	time.Sleep(100 * time.Millisecond)
	cmds.none(t) // c1 was acknowledged: not again
}

// The per-drone ACL (deploy/'s rules, brokertest.Options.Drones): a drone
// with d1's credentials cannot receive d2's commands nor publish d2's
// state, whatever drone id it claims.
func TestPerDroneACL(t *testing.T) {
	m := brokertest.Start(t, &brokertest.Options{Drones: []string{"d1", "d2"}})
	ground := m.Peer(t, brokertest.GroundUser)
	all := ground.MustSubscribe(t, "fleet/#", 1)

	d1cmds := newCommands()
	d1 := connect(t, m.Config("d1"), d1cmds.on)
	brokertest.ReceiveUntil(t, all, wait, payloadIs(broker.DefaultOnline("d1")))

	// An impostor: drone id d2, d1's credentials.
	impostor := m.Config("d2")
	impostor.Username, impostor.Password = "d1", brokertest.Password("d1")
	impostor.ClientID = "impostor"
	impostor.Log = testLog(t)
	stolen := newCommands()
	imp, err := broker.Connect(ctxFor(t, wait), impostor, stolen.on)
	switch {
	case errors.Is(err, broker.ErrNotAuthorized):
		// A broker that refuses the SUBSCRIBE stops it here.
	case err != nil:
		t.Fatalf("impostor: %v", err)
	default:
		// Mosquitto 2.0 grants the SUBSCRIBE and drops on delivery, and
		// acknowledges the PUBLISH it drops.
		t.Cleanup(func() { _ = imp.Close(ctxFor(t, wait)) })
		if err := imp.PublishState(ctxFor(t, wait), []byte(`{"drone":"d2","online":true,"forged":true}`)); err != nil {
			t.Fatal(err)
		}
		if err := imp.PublishEvent(ctxFor(t, wait), []byte(`{"forged":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	// d1's own event after the impostor's: the ground must see it and
	// nothing of the impostor before it.
	if err := d1.PublishEvent(ctxFor(t, wait), []byte("d1 marker")); err != nil {
		t.Fatal(err)
	}
	for _, msg := range brokertest.ReceiveUntil(t, all, wait, payloadIs([]byte("d1 marker"))) {
		if strings.HasPrefix(msg.Topic, "fleet/d2/") {
			t.Errorf("the ground saw %s %q from d1's credentials", msg.Topic, msg.Payload)
		}
	}
	if got := retained(t, m, brokertest.GroundUser, "fleet/d2/state"); got != nil {
		t.Errorf("retained fleet/d2/state = %q, want none", got)
	}
	ground.MustPublish(t, "fleet/d2/cmd", 1, false, []byte("for d2"))
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("for d1"))
	if got := d1cmds.next(t); string(got) != "for d1" {
		t.Fatalf("d1 got %q", got)
	}
	// The impostor shares d1's user but not its client id: had it been
	// let read fleet/d2/cmd, "for d2" would have come before "for d1".
	ground.MustPublish(t, "fleet/d1/cmd", 1, false, []byte("for d1, again"))
	d1cmds.next(t)
	stolen.none(t)

	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "d1", "wrong"},
		{"unknown user", "d9", "d9-secret"},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := m.Config("d1")
			cfg.Username, cfg.Password = tc.user, tc.password
			cfg.Log = testLog(t)
			start := time.Now()
			_, err := broker.Connect(ctxFor(t, wait), cfg, func([]byte) {})
			if !errors.Is(err, broker.ErrNotAuthorized) {
				t.Fatalf("err = %v, want ErrNotAuthorized", err)
			}
			if time.Since(start) > wait/2 {
				t.Errorf("the refusal took %v: it must not be retried", time.Since(start))
			}
		})
	}
}

// File-based TLS with per-drone client certificates (CAFile, CertFile,
// KeyFile): the certificate's name is the user the ACL knows.
func TestTLSClientCertificate(t *testing.T) {
	m := brokertest.Start(t, &brokertest.Options{TLS: true, Drones: []string{"d1"}})
	cfg := m.Config("d1")
	if !strings.HasPrefix(cfg.URL, "ssl://") || cfg.CertFile == "" {
		t.Fatalf("config %+v", cfg)
	}
	cmds := newCommands()
	connect(t, cfg, cmds.on)
	if got := retained(t, m, brokertest.GroundUser, "fleet/d1/state"); !bytes.Equal(got, broker.DefaultOnline("d1")) {
		t.Fatalf("retained state = %q", got)
	}
	m.Peer(t, brokertest.GroundUser).MustPublish(t, "fleet/d1/cmd", 1, false, []byte("over TLS"))
	if got := cmds.next(t); string(got) != "over TLS" {
		t.Fatalf("command %q", got)
	}

	// Without the CA the broker's certificate is not trusted: no retries.
	bad := cfg
	bad.CAFile = ""
	bad.Log = testLog(t)
	start := time.Now()
	_, err := broker.Connect(ctxFor(t, wait), bad, func([]byte) {})
	if err == nil || !strings.Contains(err.Error(), "CAFile") || time.Since(start) > wait/2 {
		t.Fatalf("without CAFile: err = %v after %v; want a quick error naming CAFile", err, time.Since(start))
	}
}

func TestConnectUnreachable(t *testing.T) {
	m := brokertest.Start(t, nil)
	m.Stop() // a port nobody listens on
	cfg := m.Config("d1")
	cfg.Log = testLog(t)
	start := time.Now()
	_, err := broker.Connect(ctxFor(t, 1500*time.Millisecond), cfg, func([]byte) {})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), m.Addr) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v; want the deadline, the address and the last attempt's error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Connect returned %v after its deadline", d)
	}
}

// TestNewThenStart: a Client made with New can be handed to what handles
// its commands before it connects; events before Start are refused with
// ErrNotStarted, Start connects and delivers commands, a second Start is
// refused, and a Client closed without a Start closes at once.
func TestNewThenStart(t *testing.T) {
	m := brokertest.Start(t, nil)
	c, err := broker.New(m.Config("d1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, wait)
	if err := c.PublishEvent(ctx, []byte(`{}`)); !errors.Is(err, broker.ErrNotStarted) {
		t.Fatalf("PublishEvent before Start: %v, want ErrNotStarted", err)
	}
	cmds := newCommands()
	if err := c.Start(ctx, cmds.on); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	m.Peer(t, "").MustPublish(t, broker.Topics("d1").Cmd, 1, false, []byte("hello"))
	if got := cmds.next(t); string(got) != "hello" {
		t.Fatalf("command %q, want hello", got)
	}
	if err := c.Start(ctx, cmds.on); err == nil {
		t.Fatal("a second Start was accepted")
	}

	idle, err := broker.New(m.Config("d2"))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := idle.Close(cctx); err != nil {
		t.Fatalf("Close without Start: %v", err)
	}
}
