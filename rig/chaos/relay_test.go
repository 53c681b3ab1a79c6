package chaos

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/skyswap/skyswap/handoff/onboard"
)

// relayRig is a NATS server, a relay in front of it, and clients.
type relayRig struct {
	t     *testing.T
	ns    *onboard.Server
	relay *Relay
}

func newRelayRig(t *testing.T) *relayRig {
	t.Helper()
	ns, err := onboard.Start(onboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	r, err := ListenRelay("127.0.0.1:0", strings.TrimPrefix(ns.URL(), "nats://"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &relayRig{t: t, ns: ns, relay: r}
}

// connect connects a client named name through the relay, or straight to
// the server when direct.
func (r *relayRig) connect(name string, direct bool) *nats.Conn {
	r.t.Helper()
	url := "nats://" + r.relay.Addr()
	if direct {
		url = r.ns.URL()
	}
	nc, err := nats.Connect(url, nats.Name(name), nats.Timeout(10*time.Second))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	return nc
}

// inbox collects the messages of one subscription in arrival order.
type inbox struct {
	mu   sync.Mutex
	msgs []string
	got  chan struct{}
}

func subscribe(t *testing.T, nc *nats.Conn, subject string) *inbox {
	t.Helper()
	in := &inbox{got: make(chan struct{}, 1024)}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		in.mu.Lock()
		in.msgs = append(in.msgs, string(m.Data))
		in.mu.Unlock()
		in.got <- struct{}{}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the server has the subscription
		t.Fatal(err)
	}
	return in
}

func (in *inbox) all() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs...)
}

// waitFor waits up to 10 s until the inbox holds n messages.
func (in *inbox) waitFor(t *testing.T, n int, what string) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(in.all()) < n {
		select {
		case <-in.got:
		case <-deadline:
			t.Fatalf("%s: %d messages after 10 s, want %d: %q", what, len(in.all()), n, in.all())
		}
	}
	return in.all()
}

// TestRelayHoldsOnlyTheNamedConnection: while a delay is on for flight-v2,
// its messages wait in both directions and flight-v1's pass; releasing it
// lets everything held through, in order.
func TestRelayHoldsOnlyTheNamedConnection(t *testing.T) {
	r := newRelayRig(t)
	v1 := r.connect("flight-v1", false)
	v2 := r.connect("flight-v2", false)
	ground := r.connect("observer", true)
	up := subscribe(t, ground, "up.>")
	down1 := subscribe(t, v1, "down")
	down2 := subscribe(t, v2, "down")

	conns, release := r.relay.Delay("flight-v2", time.Hour)
	if conns != 1 {
		t.Fatalf("Delay counted %d connections named flight-v2, want 1", conns)
	}
	const n = 20
	for i := range n {
		v2.Publish("up.v2", []byte(fmt.Sprint("v2-", i)))
	}
	v1.Publish("up.v1", []byte("v1-0"))      // passes
	ground.Publish("down", []byte("down-0")) // v1 gets it; v2's copy waits
	up.waitFor(t, 1, "v1 under v2's delay")
	down1.waitFor(t, 1, "v1's subscription under v2's delay")
	time.Sleep(300 * time.Millisecond) // held traffic would have come by now
	if got := up.all(); len(got) != 1 || got[0] != "v1-0" {
		t.Fatalf("received %q while v2 was held, want only v1's message", got)
	}
	if got := down2.all(); len(got) != 0 {
		t.Fatalf("v2 received %q while held", got)
	}

	release()
	got := up.waitFor(t, n+1, "v2 after release")
	for i := range n {
		if got[i+1] != fmt.Sprint("v2-", i) {
			t.Fatalf("after release: %q, want v2's messages in order", got)
		}
	}
	down2.waitFor(t, 1, "v2's subscription after release")
	v2.Publish("up.v2", []byte("after"))
	if got := up.waitFor(t, n+2, "v2 after the delay"); got[n+1] != "after" {
		t.Fatalf("last message %q, want %q", got[n+1], "after")
	}
}

// TestRelayDelayFollowsReconnects: a connection that names itself while
// a delay is on for its name is held from its CONNECT on.
func TestRelayDelayFollowsReconnects(t *testing.T) {
	r := newRelayRig(t)
	conns, release := r.relay.Delay("flight-v2", time.Hour)
	defer release()
	if conns != 0 {
		t.Fatalf("%d connections before any connected", conns)
	}
	connected := make(chan error, 1)
	go func() {
		nc, err := nats.Connect("nats://"+r.relay.Addr(), nats.Name("flight-v2"), nats.Timeout(time.Hour))
		if err == nil {
			nc.Close()
		}
		connected <- err
	}()
	select {
	case err := <-connected:
		t.Fatalf("connected (%v) through a 1 h delay on its name", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-connected; err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestRelayCloseLetsGo: Close lifts the delays, so it does not wait for
// what is held.
func TestRelayCloseLetsGo(t *testing.T) {
	r := newRelayRig(t)
	v2 := r.connect("flight-v2", false)
	r.relay.Delay("flight-v2", time.Hour)
	v2.Publish("up", []byte("held"))
	closed := make(chan error, 1)
	go func() { closed <- r.relay.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits after 10 s")
	}
}

func TestConnectName(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`CONNECT {"verbose":false,"name":"flight-v2","lang":"go"}` + "\r\n", "flight-v2"},
		{`connect	{"name":"x"}` + "\r\n", "x"},
		{`CONNECT {"verbose":false}` + "\r\n", ""},
		{`CONNECT {broken` + "\r\n", ""},
		{`PING` + "\r\n", ""},
		{"\x16\x03\x01\x02\x00\x01", ""}, // a TLS hello
	} {
		if got := connectName([]byte(tc.line)); got != tc.want {
			t.Errorf("connectName(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestLatencyFault: a latency fault holds the selected instance's
// connection for its time and lifts the delay after; an instance with no
// connection through the relay is reported.
func TestLatencyFault(t *testing.T) {
	r := newRelayRig(t)
	r.connect("flight-v1", false)
	r.connect("flight-v2", false)
	c := &fakeContainers{list: flight()}
	evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{Relay: r.relay}, "kind=latency,delay=600ms,for=2s")
	if len(evs) != 1 || !evs[0].OK || evs[0].Container != "flight-v2" || evs[0].Conns != 1 || evs[0].DelayMs != 600 || evs[0].ForMs != 2000 {
		t.Fatalf("events %+v, want v2's one connection held", evs)
	}
	r.relay.mu.Lock()
	left := len(r.relay.holds)
	r.relay.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d delays left on after the fault", left)
	}

	v3 := Selector{"io.skyswap.app": "camera"}
	evs = runFaults(t, c, &fakeClock{now: epoch}, v3, Config{Relay: r.relay}, "kind=latency,delay=600ms,for=2s")
	if len(evs) != 1 || evs[0].OK || !strings.Contains(evs[0].Error, "no NATS connection named camera-v2 passes through the relay") {
		t.Fatalf("events %+v, want ok=false saying camera-v2 does not use the relay", evs)
	}
}
