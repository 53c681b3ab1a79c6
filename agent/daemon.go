package agent

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/instances"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/agent/report"
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
	// AppRTMs is AGENT_APP_RT_MS: the CPU time, ms per second, each app
	// instance may run under SCHED_FIFO, which FLIGHT_RT_PRIO asks for
	// (containers.Spec.RealTime); 0 = none, the default, and the app's
	// request is refused. 1..400: two instances run through a hand-over,
	// and the machine keeps real-time time of its own.
	AppRTMs float64
	// Labels are AGENT_LABELS, key=value,... (report.ParseLabels): what the
	// drone says about itself in its retained state, for the ground to
	// pick drones by (dronectl rollout -select site=field-a); nil = none.
	Labels map[string]string
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
	r.Float("AGENT_APP_RT_MS", &c.AppRTMs, 1, 400)
	var droneLabels string
	r.String("AGENT_LABELS", &droneLabels)
	var err error
	if c.Labels, err = report.ParseLabels(droneLabels); err != nil {
		r.Fail("AGENT_LABELS: %v: give key=value,key=value, e.g. site=field-a,role=survey", err)
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/skyswap"
	}
	if c.App == "" {
		c.App = labels.DefaultApp
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
	d := &daemon{cfg: cfg, log: log}
	defer d.close()
	for _, phase := range []func(context.Context) error{d.openState, d.openNATS, d.openRuntime, d.newAgent, d.start} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	<-ctx.Done()
	log.Info("drone-agent stopping; app instances keep flying")
	return nil
}

// daemon is RunDaemon's parts, opened one phase at a time and closed in
// the reverse order.
type daemon struct {
	cfg     DaemonConfig
	log     *slog.Logger
	closers []func()

	keys    map[string]ed25519.PublicKey
	seen    *command.Seen
	j       *journal.Journal
	natsURL string
	nc      *nats.Conn
	rt      *containers.Runtime
	coord   *coordinator.Coordinator
	inst    *instances.Runtime
	client  *broker.Client
	a       *Agent
}

func (d *daemon) onClose(f func()) { d.closers = append(d.closers, f) }

func (d *daemon) close() {
	for _, f := range slices.Backward(d.closers) {
		f()
	}
}

// openState reads the trusted keys and opens the command ids seen and the
// journal.
func (d *daemon) openState(context.Context) error {
	var err error
	if d.keys, err = command.LoadPublicKeys(d.cfg.TrustedKeys); err != nil {
		return fmt.Errorf("AGENT_TRUSTED_KEYS: %w", err)
	}
	if err := os.MkdirAll(d.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("AGENT_STATE_DIR: %w", err)
	}
	if d.seen, err = command.OpenSeen(filepath.Join(d.cfg.StateDir, "seen.json")); err != nil {
		return err
	}
	d.j, err = journal.Open(d.cfg.StateDir)
	return err
}

// openNATS starts the embedded on-board NATS (unless AGENT_NATS_URL names
// one) and connects to it.
func (d *daemon) openNATS(ctx context.Context) error {
	d.natsURL = d.cfg.NATSURL
	if d.natsURL == "" {
		ns, err := onboard.Start(onboard.Config{Port: d.cfg.NATSPort, StoreDir: filepath.Join(d.cfg.StateDir, "nats")})
		if err != nil {
			return fmt.Errorf("embedded NATS on 127.0.0.1:%d: %w (set AGENT_NATS_PORT or AGENT_NATS_URL)", d.cfg.NATSPort, err)
		}
		d.onClose(ns.Shutdown)
		d.natsURL = ns.URL()
	}
	nc, err := nats.Connect(d.natsURL, nats.Name("drone-agent"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("NATS %s: %w", d.natsURL, err)
	}
	d.nc = nc
	d.onClose(nc.Close)
	return handoff.EnsureStream(ctx, nc, d.cfg.App)
}

// openRuntime opens containerd, the app's instances, the lease and the
// coordinator.
func (d *daemon) openRuntime(ctx context.Context) error {
	cfg := d.cfg
	mounts, err := parseMounts(cfg.Mounts)
	if err != nil {
		return err
	}
	if d.rt, err = containers.Open(ctx, containers.Config{Socket: cfg.Containerd, Namespace: cfg.Namespace,
		LogDir: cfg.LogDir, PlainHTTP: splitList(cfg.PlainHTTP, ",")}); err != nil {
		return err
	}
	d.onClose(func() { d.rt.Close() })
	env := append(splitList(cfg.AppEnv, ";"), "FLIGHT_NATS="+cmp.Or(cfg.AppNATSURL, d.natsURL), "FLIGHT_APP="+cfg.App)
	d.inst = instances.New(d.rt, instances.Config{Env: env, Mounts: mounts, Devices: splitList(cfg.Devices, ","),
		Grace: time.Duration(cfg.Grace * float64(time.Second)), Labels: map[string]string{labels.App: cfg.App},
		RealTime: time.Duration(cfg.AppRTMs * float64(time.Millisecond))})
	ls, err := bus.OpenLease(ctx, cfg.Lease, "drone-agent")
	if err != nil {
		return fmt.Errorf("AGENT_LEASE: %w", err)
	}
	d.onClose(func() { ls.Close() })
	if d.coord, err = coordinator.New(d.nc, d.inst, coordinator.Config{App: cfg.App, Lease: ls, Log: d.log}); err != nil {
		return err
	}
	d.onClose(d.coord.Close)
	return nil
}

// newAgent makes the MQTT client (not connected yet) and the agent that
// reports through it.
func (d *daemon) newAgent(context.Context) error {
	cfg := d.cfg
	var err error
	if d.client, err = broker.New(broker.Config{URL: cfg.BrokerURL, Drone: cfg.Drone, Username: cfg.BrokerUser,
		Password: cfg.BrokerPass, CAFile: cfg.BrokerCA, CertFile: cfg.BrokerCert, KeyFile: cfg.BrokerKey,
		WillPayload: OfflineState(cfg.Drone, cfg.Labels), Log: d.log}); err != nil {
		return err
	}
	// Closing says goodbye (the offline state) after the relay stopped
	// and before the coordinator goes.
	d.onClose(func() { d.client.Close(context.Background()) })
	d.a, err = New(Config{Drone: cfg.Drone, Labels: cfg.Labels, Verifier: command.Verifier{Keys: d.keys}, Log: d.log,
		Probation: time.Duration(cfg.Probation * float64(time.Second)), Schemas: frameSchemas{NATSOnboard(d.nc)}},
		d.client, d.rt, d.inst, d.coord, d.seen, d.j)
	return err
}

// start finds what flies (before anything else can change it), connects
// MQTT, relays telemetry, and recovers a half-done update: a restart
// (crash, SIGKILL, power) keeps whatever flies, removes the rest and
// settles the journal, reporting it over MQTT.
func (d *daemon) start(ctx context.Context) error {
	cfg := d.cfg
	flying, err := Flying(ctx, NATSOnboard(d.nc), cfg.App, time.Second)
	if err != nil {
		return err
	}
	if err := d.client.Start(ctx, func(payload []byte) { d.a.Handle(ctx, payload) }); err != nil {
		return err
	}
	rctx, stopRelay := context.WithCancel(ctx)
	relayed := make(chan error, 1)
	go func() {
		err := RelayTelemetry(rctx, NATSOnboard(d.nc), d.client, RelayConfig{Drone: cfg.Drone, App: cfg.App, Log: d.log})
		if err != nil {
			d.log.Error("no telemetry or camera to the ground", "err", err)
		}
		relayed <- err
	}()
	d.onClose(func() { stopRelay(); <-relayed })
	if err := d.a.Recover(ctx, cfg.App, d.rt, flying); err != nil {
		return err
	}
	if err := d.a.PublishState(ctx); err != nil {
		d.log.Warn("initial state", "err", err)
	}
	d.log.Info("drone-agent running", "drone", cfg.Drone, "app", cfg.App, "nats", d.natsURL, "broker", cfg.BrokerURL,
		"owner", d.j.State().Owner[cfg.App])
	return nil
}
