// Package pushtest is what tests of the ground side need: Drone, a fake
// drone on a real broker that verifies commands as the agent does and
// answers with scripted events, and Registry, an in-process OCI registry
// on loopback with small random images.
package pushtest

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/images/build"
)

// Script returns the events a Drone publishes for a verified command, in
// order; Drone, Command (when empty) and Time are filled in. It runs on
// the Drone's goroutine and may publish states through d.
type Script func(d *Drone, c command.Command) []report.Event

// Drone answers the commands on fleet/<id>/cmd the way the agent does: it
// parses and verifies each (command.Verifier, trusting one key), reports a
// refusal with the verifier's reason as a "refused" event, and otherwise
// publishes what its Script gives.
type Drone struct {
	ID   string
	Peer *brokertest.Peer // its connection, to publish more

	t      testing.TB
	v      command.Verifier
	script Script

	mu  sync.Mutex
	got []command.Command
	raw int
}

// StartDrone subscribes a fake drone id to its commands on m (as user id,
// with the credentials m made for it), trusting trusted, and stops it when
// the test ends. Commands sent after it returns reach it.
func StartDrone(t testing.TB, m *brokertest.Mosquitto, id string, trusted ed25519.PublicKey, s Script) *Drone {
	t.Helper()
	d := &Drone{ID: id, Peer: m.Peer(t, id), t: t, script: s,
		v: command.Verifier{Keys: map[string]ed25519.PublicKey{command.KeyID(trusted): trusted}, Drone: id}}
	cmds := d.Peer.MustSubscribe(t, "fleet/"+id+"/cmd", 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case msg := <-cmds:
				d.handle(msg.Payload)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return d
}

func (d *Drone) handle(payload []byte) {
	d.mu.Lock()
	d.raw++
	d.mu.Unlock()
	c, err := command.Parse(payload)
	if err == nil {
		err = d.v.Verify(c)
	}
	if err != nil {
		d.Event(report.Event{Command: c.ID, App: c.App, Phase: report.PhaseRefused, Error: err.Error()})
		return
	}
	d.mu.Lock()
	d.got = append(d.got, c)
	d.mu.Unlock()
	if d.script == nil {
		return
	}
	for _, e := range d.script(d, c) {
		if e.Command == "" {
			e.Command = c.ID
		}
		d.Event(e)
	}
}

// Event publishes e on fleet/<id>/events (QoS 1), with Drone and Time
// filled in when empty.
func (d *Drone) Event(e report.Event) {
	if e.Drone == "" {
		e.Drone = d.ID
	}
	if e.Time == "" {
		e.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(e)
	if err := d.Peer.Publish("fleet/"+d.ID+"/events", 1, false, b); err != nil {
		d.t.Error(err)
	}
}

// State publishes st on fleet/<id>/state, retained, as the agent does.
func (d *Drone) State(st report.State) {
	b, _ := json.Marshal(st)
	if err := d.Peer.Publish("fleet/"+d.ID+"/state", 1, true, b); err != nil {
		d.t.Error(err)
	}
}

// Commands returns the commands the Drone verified, in arrival order.
func (d *Drone) Commands() []command.Command {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]command.Command(nil), d.got...)
}

// Received is how many payloads arrived on the command topic, verified or
// not.
func (d *Drone) Received() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.raw
}

// Registry is an in-process OCI registry on 127.0.0.1 (plain HTTP).
type Registry struct {
	Host string // 127.0.0.1:<port>
}

// StartRegistry starts a Registry, closed when the test ends.
func StartRegistry(t testing.TB) *Registry {
	srv := httptest.NewServer(build.NewRegistry())
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

// PushIndex pushes a small random two-image index as repoTag
// ("flight:v2") and returns its digest.
func (r *Registry) PushIndex(t testing.TB, repoTag string) string {
	t.Helper()
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// PushImage pushes a small random image as repoTag and returns its digest.
func (r *Registry) PushImage(t testing.TB, repoTag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
