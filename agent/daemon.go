package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/instances"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/envconf"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/onboard"
	"github.com/skyswap/skyswap/hw/bus"
	"github.com/skyswap/skyswap/images/labels"
)

// DaemonConfig is drone-agent's configuration; LoadDaemonConfig fills it
// from AGENT_* variables. The zero value of each optional field means the
// default noted beside it.
type DaemonConfig struct {
	Drone       string  // AGENT_DRONE (required)
	BrokerURL   string  // AGENT_BROKER_URL (required): tcp://, ssl://, ws://
	BrokerUser  string  // AGENT_BROKER_USER
	BrokerPass  string  // AGENT_BROKER_PASSWORD
	BrokerCA    string  // AGENT_BROKER_CA: CA file for ssl://
	BrokerCert  string  // AGENT_BROKER_CERT: client certificate file
	BrokerKey   string  // AGENT_BROKER_KEY: client key file
	TrustedKeys string  // AGENT_TRUSTED_KEYS (required): keyid=path.pem,... (see command.LoadPublicKeys)
	StateDir    string  // AGENT_STATE_DIR: journal and replay list; "" = /var/lib/skyswap
	Containerd  string  // AGENT_CONTAINERD_SOCKET; "" = /run/containerd/containerd.sock
	Namespace   string  // AGENT_NAMESPACE; "" = skyswap
	LogDir      string  // AGENT_LOG_DIR: containers' logs; "" = /var/log/skyswap
	PlainHTTP   string  // AGENT_PLAIN_HTTP: registries reached over plain HTTP, comma separated (host:port)
	NATSURL     string  // AGENT_NATS_URL: on-board NATS; "" = embedded on 127.0.0.1
	NATSPort    int     // AGENT_NATS_PORT: the embedded server's port; 0 = 4222
	AppNATSURL  string  // AGENT_APP_NATS_URL: the NATS URL app instances get as FLIGHT_NATS (skyswap-chaos's relay, say); "" = the agent's own
	App         string  // AGENT_APP: the app this agent updates; "" = flight
	AppEnv      string  // AGENT_APP_ENV: environment of every app instance, ';' separated KEY=value (FLIGHT_BUS=...)
	Mounts      string  // AGENT_MOUNTS: bind mounts for app instances, src:dst[:ro], comma separated
	Devices     string  // AGENT_DEVICES: devices for app instances, comma separated (/dev/i2c-1)
	Grace       float64 // AGENT_GRACE_S: SIGTERM to SIGKILL, seconds; 0 = 30
	Lease       string  // AGENT_LEASE: the motors' lease as the agent reads it: sim:PATH (the virtual drone's socket) or the shared-memory file; "" = /dev/shm/skyswap-lease
	Probation   float64 // AGENT_PROBATION_S: hand-over probation, seconds; 0 = coordinator.DefaultProbation
}

// LoadDaemonConfig reads AGENT_* settings from getenv.
func LoadDaemonConfig(getenv func(string) string) (DaemonConfig, error) {
	var c DaemonConfig
	r := envconf.New(getenv)
	r.Required("AGENT_DRONE", &c.Drone, "set this drone's id (the fleet/<id>/ topics)")
	r.Required("AGENT_BROKER_URL", &c.BrokerURL, "set the MQTT broker, e.g. tcp://ground:1883")
	r.String("AGENT_BROKER_USER", &c.BrokerUser)
	r.String("AGENT_BROKER_PASSWORD", &c.BrokerPass)
	r.String("AGENT_BROKER_CA", &c.BrokerCA)
	r.String("AGENT_BROKER_CERT", &c.BrokerCert)
	r.String("AGENT_BROKER_KEY", &c.BrokerKey)
	r.Required("AGENT_TRUSTED_KEYS", &c.TrustedKeys, "list the ground keys that may command this drone: keyid=/etc/skyswap/ground.pub")
	r.String("AGENT_STATE_DIR", &c.StateDir)
	r.String("AGENT_CONTAINERD_SOCKET", &c.Containerd)
	r.String("AGENT_NAMESPACE", &c.Namespace)
	r.String("AGENT_LOG_DIR", &c.LogDir)
	r.String("AGENT_PLAIN_HTTP", &c.PlainHTTP)
	r.String("AGENT_NATS_URL", &c.NATSURL)
	r.String("AGENT_APP_NATS_URL", &c.AppNATSURL)
	var port int64
	r.Int("AGENT_NATS_PORT", &port, 1, 65535)
	c.NATSPort = int(port)
	r.String("AGENT_APP", &c.App)
	r.String("AGENT_APP_ENV", &c.AppEnv)
	r.String("AGENT_MOUNTS", &c.Mounts)
	r.String("AGENT_DEVICES", &c.Devices)
	r.Float("AGENT_GRACE_S", &c.Grace, 0.1, 600)
	r.String("AGENT_LEASE", &c.Lease)
	r.Float("AGENT_PROBATION_S", &c.Probation, 0.1, 600)
	if c.StateDir == "" {
		c.StateDir = "/var/lib/skyswap"
	}
	if c.App == "" {
		c.App = "flight"
	}
	if c.NATSPort == 0 {
		c.NATSPort = 4222
	}
	if c.Grace == 0 {
		c.Grace = 30
	}
	return c, r.Err()
}

func splitList(s, sep string) []string {
	var out []string
	for _, f := range strings.Split(s, sep) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseMounts(s string) ([]containers.Mount, error) {
	var ms []containers.Mount
	for _, f := range splitList(s, ",") {
		p := strings.Split(f, ":")
		if len(p) < 2 || len(p) > 3 || (len(p) == 3 && p[2] != "ro") {
			return nil, fmt.Errorf("AGENT_MOUNTS: %q: want src:dst or src:dst:ro", f)
		}
		ms = append(ms, containers.Mount{Source: p[0], Target: p[1], ReadOnly: len(p) == 3})
	}
	return ms, nil
}

// RunDaemon runs the agent until ctx is done: the embedded NATS server
// (unless one is configured), containerd, the coordinator, the journal,
// and the MQTT intake. Commands are handled one at a time, in order.
func RunDaemon(ctx context.Context, cfg DaemonConfig, log *slog.Logger) error {
	keys, err := command.LoadPublicKeys(cfg.TrustedKeys)
	if err != nil {
		return fmt.Errorf("AGENT_TRUSTED_KEYS: %w", err)
	}
	mounts, err := parseMounts(cfg.Mounts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("AGENT_STATE_DIR: %w", err)
	}
	seen, err := command.OpenSeen(filepath.Join(cfg.StateDir, "seen.json"))
	if err != nil {
		return err
	}
	j, err := journal.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	natsURL := cfg.NATSURL
	if natsURL == "" {
		ns, err := onboard.Start(onboard.Config{Port: cfg.NATSPort, StoreDir: filepath.Join(cfg.StateDir, "nats")})
		if err != nil {
			return fmt.Errorf("embedded NATS on 127.0.0.1:%d: %w (set AGENT_NATS_PORT or AGENT_NATS_URL)", cfg.NATSPort, err)
		}
		defer ns.Shutdown()
		natsURL = ns.URL()
	}
	nc, err := nats.Connect(natsURL, nats.Name("drone-agent"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("NATS %s: %w", natsURL, err)
	}
	defer nc.Close()
	if err := handoff.EnsureStream(ctx, nc, cfg.App); err != nil {
		return err
	}
	rt, err := containers.Open(ctx, containers.Config{Socket: cfg.Containerd, Namespace: cfg.Namespace,
		LogDir: cfg.LogDir, PlainHTTP: splitList(cfg.PlainHTTP, ",")})
	if err != nil {
		return err
	}
	defer rt.Close()
	appNATS := cfg.AppNATSURL
	if appNATS == "" {
		appNATS = natsURL
	}
	env := append(splitList(cfg.AppEnv, ";"), "FLIGHT_NATS="+appNATS, "FLIGHT_APP="+cfg.App)
	inst := instances.New(rt, instances.Config{Env: env, Mounts: mounts, Devices: splitList(cfg.Devices, ","),
		Grace: time.Duration(cfg.Grace * float64(time.Second)), Labels: map[string]string{labels.App: cfg.App}})
	ls, err := bus.OpenLease(ctx, cfg.Lease, "drone-agent")
	if err != nil {
		return fmt.Errorf("AGENT_LEASE: %w", err)
	}
	defer ls.Close()
	coord, err := coordinator.New(nc, inst, coordinator.Config{App: cfg.App, Lease: ls, Log: log})
	if err != nil {
		return err
	}
	defer coord.Close()

	// Reports go through a publisher that exists once MQTT is up.
	pub := &lazyPublisher{}
	a, err := New(Config{Drone: cfg.Drone, Verifier: command.Verifier{Keys: keys}, Log: log,
		Probation: time.Duration(cfg.Probation * float64(time.Second)), Schemas: frameSchemas{nc}}, pub, rt, inst, coord, seen, j)
	if err != nil {
		return err
	}

	// A restart (crash, SIGKILL, power) may have left an update half done:
	// keep whatever flies, remove the rest, settle the journal. Events are
	// reported once MQTT is up (the publisher buffers nothing before).
	flying, err := Flying(ctx, nc, cfg.App, time.Second)
	if err != nil {
		return err
	}
	recovered := func() error { return a.Recover(ctx, cfg.App, rt, flying) }

	client, err := broker.Connect(ctx, broker.Config{URL: cfg.BrokerURL, Drone: cfg.Drone, Username: cfg.BrokerUser,
		Password: cfg.BrokerPass, CAFile: cfg.BrokerCA, CertFile: cfg.BrokerCert, KeyFile: cfg.BrokerKey, Log: log},
		func(payload []byte) { a.Handle(ctx, payload) })
	if err != nil {
		return err
	}
	pub.set(client)
	defer client.Close(context.WithoutCancel(ctx))
	rctx, stopRelay := context.WithCancel(ctx)
	relayed := make(chan error, 1)
	go func() {
		err := RelayTelemetry(rctx, nc, client, RelayConfig{Drone: cfg.Drone, App: cfg.App, Log: log})
		if err != nil {
			log.Error("no telemetry or camera to the ground", "err", err)
		}
		relayed <- err
	}()
	defer func() { stopRelay(); <-relayed }()
	if err := recovered(); err != nil {
		return err
	}
	if err := a.PublishState(ctx); err != nil {
		log.Warn("initial state", "err", err)
	}
	log.Info("drone-agent running", "drone", cfg.Drone, "app", cfg.App, "nats", natsURL, "broker", cfg.BrokerURL,
		"owner", j.State().Owner[cfg.App])
	<-ctx.Done()
	log.Info("drone-agent stopping; app instances keep flying")
	return nil
}

// lazyPublisher forwards to the MQTT client once it is connected (a
// command queued at the broker can arrive while Connect returns).
type lazyPublisher struct{ c atomic.Pointer[broker.Client] }

func (p *lazyPublisher) set(c *broker.Client) { p.c.Store(c) }

func (p *lazyPublisher) PublishState(ctx context.Context, b []byte) error {
	if c := p.c.Load(); c != nil {
		return c.PublishState(ctx, b)
	}
	return errNotConnected
}

func (p *lazyPublisher) PublishEvent(ctx context.Context, b []byte) error {
	if c := p.c.Load(); c != nil {
		return c.PublishEvent(ctx, b)
	}
	return errNotConnected
}

var errNotConnected = errors.New("agent: MQTT not connected yet")
