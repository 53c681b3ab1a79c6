package handofftest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/skyswap/skyswap/handoff/onboard"
)

// Bus is an embedded NATS server (onboard.Start) for one test.
type Bus struct {
	t      testing.TB
	Server *onboard.Server
	URL    string
}

// NewBus starts an embedded server; it is shut down when the test ends.
func NewBus(t testing.TB) *Bus {
	t.Helper()
	s, err := onboard.Start(onboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return &Bus{t: t, Server: s, URL: s.URL()}
}

// Connect opens a connection named name; it is closed when the test ends.
func (b *Bus) Connect(name string) *nats.Conn {
	b.t.Helper()
	nc, err := Dial(b.URL, name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(nc.Close)
	return nc
}

// Dial opens a connection to url as an instance process would.
func Dial(url, name string) (*nats.Conn, error) {
	return nats.Connect(url, nats.Name(name), nats.Timeout(5*time.Second))
}
