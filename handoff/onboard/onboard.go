// Package onboard is the drone's embedded NATS server: the on-board queue
// the hand-over's frames, statuses and control requests travel on
// (package handoff), with JetStream for the frame stream. The agent starts
// it unless AGENT_NATS_URL names another; the flight app never links it.
package onboard

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures the embedded on-board NATS server. The zero value
// listens on a free loopback port with JetStream in a temporary directory.
type Config struct {
	Port     int    // TCP port on 127.0.0.1; 0 = any free port
	StoreDir string // JetStream store; "" = a new temporary directory, removed on Shutdown
}

// Server is an embedded NATS server for the on-board queue. It listens on
// loopback only.
type Server struct {
	ns      *server.Server
	tempDir string
}

// Start starts the embedded server and waits until it accepts
// connections.
func Start(cfg Config) (*Server, error) {
	s := &Server{}
	dir := cfg.StoreDir
	if dir == "" {
		d, err := os.MkdirTemp("", "skyswap-nats-")
		if err != nil {
			return nil, fmt.Errorf("onboard: nats store: %w", err)
		}
		dir, s.tempDir = d, d
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("onboard: nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.cleanup()
		return nil, errors.New("onboard: embedded nats server did not start within 10 s")
	}
	s.ns = ns
	return s, nil
}

// URL is the client URL, nats://127.0.0.1:PORT.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Shutdown stops the server and removes a temporary store.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}
