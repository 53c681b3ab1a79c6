package onboard

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
)

// TestStartServesJetStream: the server listens on loopback with JetStream
// (the frame stream needs it), and Shutdown removes its temporary store.
func TestStartServesJetStream(t *testing.T) {
	s, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.tempDir
	nc, err := nats.Connect(s.URL())
	if err != nil {
		s.Shutdown()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := handoff.EnsureStream(ctx, nc, "flight"); err != nil {
		t.Errorf("frame stream: %v", err)
	}
	nc.Close()
	s.Shutdown()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary store %s left after Shutdown: %v", dir, err)
	}
}
