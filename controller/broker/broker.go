// Package broker is the ground station's embedded MQTT broker for the
// fleet: a NATS server (github.com/nats-io/nats-server) with its MQTT
// listener, keeping sessions, retained messages and QoS 1 messages in
// flight in JetStream on disk. It speaks MQTT 3.1.1 with QoS 0, 1 and 2,
// persistent sessions, retained messages and last wills: what the drone
// agent (agent/broker) and dronectl push (controller/push) need, so they
// connect to it as to Mosquitto.
//
// It is the default, not the only choice: a ground station pointed at
// Mosquitto, EMQX or a NATS cluster by URL starts none. A fleet that
// outgrows one machine moves to a NATS cluster, which serves the same
// MQTT listener.
//
// Start listens on loopback by default. On any other address the fleet's
// drones can reach it, and so can anyone else on that network: give the
// drones and the ground passwords (Config.Passwords), which turns on the
// per-drone ACL, the same rules brokertest gives Mosquitto and deploy/
// gives a fleet: the ground (GroundUser) reads and writes fleet/#; a drone,
// whose user name is its id, reads fleet/<id>/cmd and writes fleet/<id>/#,
// and nothing else. nats-server 2.14.3 and later apply these rules to
// retained messages and QoS 1 replays too (advisory BIT-nats-2026-58209).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	agentbroker "github.com/skyswap/skyswap/agent/broker"
)

// Defaults of Config's zero fields.
const (
	// DefaultAddr is MQTT's registered port, on loopback.
	DefaultAddr = "127.0.0.1:1883"
	// startTimeout bounds the server's start, JetStream's store included.
	startTimeout = 30 * time.Second
)

// Config configures Start. Every zero value means the default documented
// on the field.
type Config struct {
	// Addr is the MQTT listener, host:port; "" means DefaultAddr
	// (127.0.0.1:1883). Port 0 picks a free port: URL tells which.
	Addr string
	// DataDir is where JetStream keeps the sessions, retained messages
	// and QoS 1 messages, so that they outlive a restart; "" means a new
	// temporary directory, removed by Close (nothing outlives the
	// broker).
	DataDir string
	// Passwords, when not nil, are the only users who may connect, by
	// name: GroundUser and drone ids (agent/broker.CheckDrone), with the
	// per-drone ACL (see the package doc). A password is plain text or a
	// bcrypt hash ("$2a$..."). nil means anyone may connect, publish and
	// subscribe: for a loopback listener.
	Passwords map[string]string
	// Log receives the server's notices, warnings and errors; nil
	// discards them.
	Log *slog.Logger
}

// GroundUser is the ground station's user name under Config.Passwords;
// it may read and write fleet/# (as brokertest.GroundUser for Mosquitto).
const GroundUser = "ground"

// Broker is a running embedded broker.
type Broker struct {
	ns      *server.Server
	url     string
	tempDir string
}

// Start starts the broker and returns once it accepts MQTT connections, or
// ctx ends (at most 30 s).
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	b := &Broker{}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "skyswap-broker-"); err != nil {
			return nil, fmt.Errorf("broker: data directory: %w", err)
		}
		b.tempDir = dir
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker: data directory: %w (give a directory this user can write)", err)
	}
	opts := &server.Options{
		ServerName: "skyswap-ground",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT, // NATS clients: loopback only, for JetStream's own use
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		MQTT:       server.MQTTOpts{Host: host, Port: port},
		// MQTT keeps one consumer of its messages' stream per QoS 1
		// subscription, a drone each: a fleet passes nats-server's
		// default limit of 1,000 consumers a stream.
		JetStreamLimits: server.JSLimitOpts{DefaultMaxConsumers: -1},
	}
	if opts.Users, err = users(cfg.Passwords); err != nil {
		b.cleanup()
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		b.cleanup()
		return nil, fmt.Errorf("broker: %w", err)
	}
	logs := &logger{log: cfg.Log}
	if logs.log == nil {
		logs.log = slog.New(slog.DiscardHandler)
	}
	ns.SetLoggerV2(logs, false, false, false)
	go ns.Start()
	if err := ready(ctx, ns, logs); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		b.cleanup()
		return nil, fmt.Errorf("broker: MQTT on %s: %w", net.JoinHostPort(host, strconv.Itoa(max(port, 0))), err)
	}
	b.ns = ns
	// The server writes the port it picked back into its options.
	b.url = "tcp://" + net.JoinHostPort(hostForURL(host), strconv.Itoa(opts.MQTT.Port))
	// Anonymous without Passwords (the user name is ignored); without a
	// ground user in them, nobody can subscribe to retained messages of
	// other drones anyway.
	if pw, ok := cfg.Passwords[GroundUser]; cfg.Passwords == nil || ok {
		if err := b.warmUp(ctx, GroundUser, pw); err != nil {
			b.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	return b, nil
}

// users returns the NATS users of Config.Passwords with the per-drone
// ACL. MQTT topic a/b/c is NATS subject a.b.c.
func users(passwords map[string]string) ([]*server.User, error) {
	if passwords == nil {
		return nil, nil
	}
	var out []*server.User
	for _, name := range slices.Sorted(maps.Keys(passwords)) {
		pub, sub := "fleet.>", "fleet.>"
		if name != GroundUser {
			if err := agentbroker.CheckDrone(name); err != nil {
				return nil, fmt.Errorf("broker: Config.Passwords: user %q is neither %q nor a drone id: %w", name, GroundUser, err)
			}
			pub, sub = "fleet."+name+".>", "fleet."+name+".cmd"
		}
		if passwords[name] == "" {
			return nil, fmt.Errorf("broker: Config.Passwords: user %q has an empty password: give each user one", name)
		}
		out = append(out, &server.User{Username: name, Password: passwords[name], Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{pub}}, Subscribe: &server.SubjectPermission{Allow: []string{sub}}}})
	}
	return out, nil
}

// splitAddr parses Config.Addr; port 0 becomes NATS's "random port".
func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("broker: Config.Addr %q: %w: give host:port, e.g. %s", addr, err, DefaultAddr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("broker: Config.Addr %q: port %q: give 0 to 65535 (0: any free port)", addr, p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ready waits until ns accepts connections, or fails with the first error
// the server logged.
func ready(ctx context.Context, ns *server.Server, logs *logger) error {
	deadline := time.Now().Add(startTimeout)
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if err := logs.fatal(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s: see the broker's log", startTimeout)
		}
	}
	return nil
}

// hostForURL is the host a client on this machine dials for a listener on
// host.
func hostForURL(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return host
}

// URL is the broker's address for MQTT clients on this machine,
// tcp://host:port.
func (b *Broker) URL() string { return b.url }

// Close stops the broker: clients see their connections close (and the
// drones' last wills are published to nobody). What is in DataDir stays.
func (b *Broker) Close() {
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
	b.cleanup()
}

func (b *Broker) cleanup() {
	if b.tempDir != "" {
		os.RemoveAll(b.tempDir)
	}
}

// errFatal marks the error the server gave up on.
var errFatal = errors.New("the server stopped")

// ReadPasswords reads a passwords file for Config.Passwords: one
// "user:password" a line (the password plain or a bcrypt hash), blank
// lines and lines starting with '#' ignored. The file must not be readable
// by others (chmod 600).
func ReadPasswords(path string) (map[string]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("broker: passwords: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("broker: passwords file %s is readable by others (%v): chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("broker: passwords: %w", err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("broker: passwords file %s line %d: want user:password", path, i+1)
		}
		if _, dup := out[user]; dup {
			return nil, fmt.Errorf("broker: passwords file %s line %d: user %q again", path, i+1, user)
		}
		out[user] = pass
	}
	return out, nil
}
