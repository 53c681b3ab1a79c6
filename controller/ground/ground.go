// Package ground is the ground station, dronectl ground: one process that
// is the whole ground side. It runs the fleet's MQTT broker
// (controller/broker, unless Config.BrokerURL names Mosquitto, EMQX or a
// NATS cluster), the fleet's OCI registry (controller/registry, unless
// Config.Registry names one), the intake that folds every drone's reports
// into the fleet's picture (controller/ground/fleet), and the web page that
// shows it live and pushes releases (controller/ground/web), signed with
// the ground's key through the same path as dronectl push
// (controller/push).
//
//	drones ──MQTT──► broker ──► intake (push.Watch) ──► fleet ──► fanout ──► each browser's WebSocket
//	       ◄─pull─── registry ◄── make images             ▲
//	                          page: push/rollback ──► push.Run ──► fleet/<drone>/cmd
//	page, dronectl rollout ──► rollouts (rollout.Manager: records in DATA/rollouts) ──► fleet/<drone>/cmd, waves
//
// It runs the fleet's rollouts too (controller/rollout), their records in
// the data directory, so a station killed mid-rollout resumes it on
// restart; the page shows them, and dronectl rollout drives them through
// the page's API.
//
// The page listens on loopback unless told otherwise; anywhere else it
// needs a token, or TLS with client certificates (Config.Listen).
package ground

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/broker"
	"github.com/skyswap/skyswap/controller/ground/fanout"
	"github.com/skyswap/skyswap/controller/ground/fleet"
	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/registry"
	"github.com/skyswap/skyswap/controller/rollout"
)

// DefaultListen is the page's address when Config.Listen is "".
const DefaultListen = "127.0.0.1:8080"

// Config configures Start. Every zero value means the default documented
// on the field.
type Config struct {
	// Listen is the page's host:port; "" means DefaultListen
	// (127.0.0.1:8080); port 0 picks a free one (Station.URL says
	// which). Any address but loopback needs Token, or TLS with
	// TLSClientCA: the page pushes releases to the fleet.
	Listen string
	// Token, when not "", is required of every browser and API call
	// (controller/ground/web).
	Token string
	// TLSCert and TLSKey are PEM files: the page is served over HTTPS.
	// TLSClientCA is a PEM file of CAs: browsers must show a
	// certificate they signed. "" each: none.
	TLSCert, TLSKey, TLSClientCA string
	// DataDir holds the embedded broker's and registry's data and the
	// ground's key; "" means a new temporary directory, removed by Close
	// (and a new key each time).
	DataDir string
	// KeyFile is the ground's signing key (dronectl keygen); "" means
	// DataDir/ground.key, made on first start with ground.pub beside it.
	KeyFile string
	// BrokerURL is the fleet's MQTT broker; "" means the embedded one
	// on BrokerListen. Link holds its credentials.
	BrokerURL string
	// BrokerListen is the embedded broker's MQTT listener; "" means
	// broker.DefaultAddr (127.0.0.1:1883). Any address but loopback needs
	// BrokerPasswords.
	BrokerListen string
	// BrokerPasswords are the embedded broker's users, with the per-drone
	// ACL (broker.Config.Passwords); the station connects as
	// broker.GroundUser. nil means anyone on the listener may do anything.
	BrokerPasswords map[string]string
	// Registry is the fleet's OCI registry, HOST[:PORT]; "" means the
	// embedded one on RegistryListen.
	Registry string
	// RegistryListen is the embedded registry's listener; "" means
	// registry.DefaultAddr (127.0.0.1:5000). Pushed images are named by
	// it: for a fleet, give the address the drones reach.
	RegistryListen string
	// PlainHTTP reaches Registry over plain HTTP; loopback registries
	// are reached over plain HTTP anyway.
	PlainHTTP bool
	// Link is the base of every command and of the intake: broker
	// credentials (Username, Password, CAFile, CertFile, KeyFile), KeyID,
	// TTL, Timeout, App. Broker, Drone and Key are filled in.
	Link push.Config
	// Log receives the station's structured log; nil discards it.
	Log *slog.Logger
}

// Station is a running ground station.
type Station struct {
	URL           string // the page, http(s)://host:port/
	BrokerURL     string // the fleet's MQTT broker
	Registry      string // the fleet's registry, HOST:PORT
	KeyID         string // the drones trust the ground's key under this id
	PublicKeyFile string // the ground's public key, for AGENT_TRUSTED_KEYS

	log      *slog.Logger
	tempDir  string
	broker   *broker.Broker     // nil: external
	registry *registry.Registry // nil: external
	fleet    *fleet.Fleet
	hub      *fanout.Hub
	watcher  *push.Watcher
	rollouts *rollout.Manager
	op       *operator
	srv      *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   sync.Once
}

// Start starts the station and returns once every part serves.
func Start(ctx context.Context, cfg Config) (s *Station, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tc, err := cfg.checkExposure()
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s = &Station{log: cfg.Log, cancel: cancel, fleet: fleet.New(fleet.Config{}), hub: &fanout.Hub{}}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if cfg.DataDir == "" {
		if cfg.DataDir, err = os.MkdirTemp("", "skyswap-ground-"); err != nil {
			return s, fmt.Errorf("ground: data directory: %w", err)
		}
		s.tempDir = cfg.DataDir
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return s, fmt.Errorf("ground: data directory: %w (give -data a directory this user can write)", err)
	}
	if cfg.Link.Key, err = s.key(cfg); err != nil {
		return s, err
	}
	if err := s.startBackends(ctx, &cfg); err != nil {
		return s, err
	}
	cfg.Link.Broker = s.BrokerURL
	if cfg.BrokerPasswords != nil && cfg.Link.Username == "" {
		cfg.Link.Username, cfg.Link.Password = broker.GroundUser, cfg.BrokerPasswords[broker.GroundUser]
	}
	if s.watcher, err = push.Watch(ctx, cfg.Link, fleet.Filters()...); err != nil {
		return s, fmt.Errorf("ground: follow the fleet on %s: %w", s.BrokerURL, err)
	}
	s.wg.Add(1)
	go s.intake(life)
	plain := cfg.PlainHTTP || s.registry != nil
	if s.rollouts, err = rollout.Open(ctx, rollout.Config{Link: cfg.Link, Dir: filepath.Join(cfg.DataDir, "rollouts"),
		Registry: s.Registry, PlainHTTP: plain, Log: cfg.Log,
		OnChange: func(rec rollout.Record) { s.hub.Publish(rec.PageMessage()) }}); err != nil {
		return s, fmt.Errorf("ground: rollouts: %w", err)
	}
	s.op = &operator{link: cfg.Link, registry: s.Registry, plain: plain, log: cfg.Log, ctx: life, busy: map[string]bool{}}
	return s, s.serve(life, cfg, tc)
}

// checkExposure refuses a page others could reach without a token or
// client certificates, and a broker they could reach without passwords,
// and loads the TLS files.
func (cfg Config) checkExposure() (*tls.Config, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("ground: listen address %q: %w: give host:port, e.g. %s", listen, err, DefaultListen)
	}
	switch {
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return nil, errors.New("ground: give both the TLS certificate and its key, or neither")
	case cfg.TLSClientCA != "" && cfg.TLSCert == "":
		return nil, errors.New("ground: client certificates need TLS: give the TLS certificate and key too")
	case !isLoopback(host) && cfg.Token == "" && cfg.TLSClientCA == "":
		return nil, fmt.Errorf("ground: the page on %s would let anyone who reaches it push releases to the fleet: give a token (-token, over TLS), or TLS with client certificates (-tls-cert, -tls-key, -tls-client-ca), or listen on 127.0.0.1", listen)
	case cfg.BrokerURL == "" && cfg.BrokerPasswords == nil && !loopbackAddr(cfg.BrokerListen, broker.DefaultAddr):
		return nil, fmt.Errorf("ground: the broker on %s would let anyone who reaches it speak for any drone: give the drones and the ground passwords (-mqtt-users), or listen on 127.0.0.1", cfg.BrokerListen)
	}
	if cfg.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("ground: TLS: %w (give the PEM certificate and its own key)", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("ground: TLS client CA: %w", err)
		}
		tc.ClientCAs = x509.NewCertPool()
		if !tc.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ground: TLS client CA %s holds no PEM certificate", cfg.TLSClientCA)
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// loopbackAddr reports whether addr (def when "") listens on loopback
// only.
func loopbackAddr(addr, def string) bool {
	if addr == "" {
		addr = def
	}
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// key loads the ground's signing key, making it on first start when it
// is the default one.
func (s *Station) key(cfg Config) (ed25519.PrivateKey, error) {
	path := cfg.KeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "ground.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			pub, priv, err := command.GenerateKey()
			if err != nil {
				return nil, err
			}
			if err := command.WritePrivateKey(path, priv); err != nil {
				return nil, fmt.Errorf("ground: key: %w", err)
			}
			if err := command.WritePublicKey(filepath.Join(cfg.DataDir, "ground.pub"), pub); err != nil {
				return nil, fmt.Errorf("ground: key: %w", err)
			}
			s.log.Info("made the ground's signing key: list it in each drone's AGENT_TRUSTED_KEYS as ID=PATH",
				"key_id", command.KeyID(pub), "public_key", filepath.Join(cfg.DataDir, "ground.pub"))
		}
	}
	priv, err := command.ReadPrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("ground: key: %w", err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	s.KeyID = command.KeyID(pub)
	if cfg.Link.KeyID != "" {
		s.KeyID = cfg.Link.KeyID
	}
	s.PublicKeyFile = filepath.Join(filepath.Dir(path), "ground.pub")
	if cfg.KeyFile != "" {
		s.PublicKeyFile = ""
	}
	return priv, nil
}

// startBackends starts the embedded broker and registry, unless cfg names
// others.
func (s *Station) startBackends(ctx context.Context, cfg *Config) error {
	s.BrokerURL, s.Registry = cfg.BrokerURL, cfg.Registry
	if s.BrokerURL == "" {
		if _, ok := cfg.BrokerPasswords[broker.GroundUser]; cfg.BrokerPasswords != nil && !ok {
			return fmt.Errorf("ground: the broker's passwords have no user %q: the ground station needs one", broker.GroundUser)
		}
		b, err := broker.Start(ctx, broker.Config{Addr: cfg.BrokerListen, DataDir: filepath.Join(cfg.DataDir, "broker"),
			Passwords: cfg.BrokerPasswords, Log: s.log})
		if err != nil {
			return fmt.Errorf("ground: %w (another broker there? give -mqtt-listen a free host:port, or -broker the one to use)", err)
		}
		s.broker, s.BrokerURL = b, b.URL()
	}
	if s.Registry == "" {
		r, err := registry.Start(ctx, registry.Config{Addr: cfg.RegistryListen, DataDir: filepath.Join(cfg.DataDir, "registry"), Log: s.log})
		if err != nil {
			return fmt.Errorf("ground: %w", err)
		}
		s.registry, s.Registry = r, r.Host()
		if h, _, _ := net.SplitHostPort(cfg.RegistryListen); h != "" && net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified() {
			s.log.Warn("the registry listens on every interface, and the images it serves are named "+r.Host()+
				": drones elsewhere cannot pull them; give -registry-listen the address the drones reach", "registry", r.Host())
		}
	}
	return nil
}

// intake folds every message into the fleet and passes what changed to
// the browsers; neither ever waits for a browser.
func (s *Station) intake(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case m := <-s.watcher.Messages():
			for _, out := range s.fleet.Handle(m.Topic, m.Payload, time.Now()) {
				s.hub.Publish(out)
			}
		case <-ctx.Done():
			return
		}
	}
}

// serve starts the page; its requests (WebSockets too) end with ctx.
func (s *Station) serve(ctx context.Context, cfg Config, tc *tls.Config) error {
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("ground: page: %w (give -listen a free host:port)", err)
	}
	h := web.New(web.Config{Token: cfg.Token, Secure: tc != nil, LoopbackHosts: cfg.Token == "" && cfg.TLSClientCA == "",
		Stats: s.Stats, Rollouts: s.rollouts, Log: s.log}, s.fleet, s.hub, s.op)
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tc,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	scheme := "http"
	if tc != nil {
		scheme = "https"
		l = tls.NewListener(l, tc)
	}
	s.URL = scheme + "://" + pageHost(l.Addr()) + "/"
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("the page stopped serving", "err", err)
		}
	}()
	s.log.Info("ground ready", "url", s.URL, "broker", s.BrokerURL, "registry", s.Registry, "key_id", s.KeyID,
		"embedded_broker", s.broker != nil, "embedded_registry", s.registry != nil)
	return nil
}

// pageHost is how a browser on this machine names the listener.
func pageHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}

// Stats are the station's counters, as /api/stats shows them.
func (s *Station) Stats() map[string]any {
	st := map[string]any{"fleet": s.fleet.Stats(), "rollouts": s.rollouts.Stats()}
	if s.registry != nil {
		st["registry"] = s.registry.Stats()
	}
	return st
}

// Close stops the page, the commands being followed, the intake, then
// the embedded registry and broker (in that order: the broker last, so a
// drone's link lasts as long as the station). Closing twice does nothing.
func (s *Station) Close() { s.closed.Do(s.close) }

func (s *Station) close() {
	s.cancel() // ends the WebSockets (hijacked: Shutdown does not), the intake and the commands followed
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.srv.Shutdown(ctx)
		cancel()
	}
	if s.op != nil {
		s.op.wait()
	}
	if s.rollouts != nil {
		s.rollouts.Close()
	}
	if s.watcher != nil {
		s.watcher.Close()
	}
	s.wg.Wait()
	if s.registry != nil {
		s.registry.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	if s.tempDir != "" {
		os.RemoveAll(s.tempDir)
	}
}
