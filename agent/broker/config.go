package broker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultKeepAlive      = 10 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	// ClientIDPrefix + drone id is the default client id.
	ClientIDPrefix = "skyswap-agent-"
)

// Config says where the broker is and who this drone is. URL and Drone
// are required; every other zero value means the default documented on
// the field.
type Config struct {
	// URL is the broker: tcp://host:port (or mqtt://), ssl://host:port
	// (or tls://, mqtts://) for TLS, ws://host:port/path or wss:// for
	// MQTT over websockets. Credentials in the URL are used (and redacted
	// in logs), but not together with Username. The nodes of a clustered
	// broker (a NATS cluster) are listed comma-separated, all plain or
	// all TLS: each connection tries them in the order given, so a drone
	// moves to the next node when its node goes down.
	URL string
	// ClientID is the MQTT client id; "" means "skyswap-agent-<Drone>".
	// Keep it stable: the broker keeps this drone's session under it.
	ClientID string
	// Drone is this drone's id, a topic segment: 1 to 64 characters from
	// [A-Za-z0-9_-] (CheckDrone).
	Drone string
	// Username and Password authenticate to the broker; "" sends none.
	// A Password needs a Username.
	Username, Password string
	// TLS is the TLS configuration for ssl://, tls://, mqtts:// and wss://
	// URLs (it is cloned). nil means the system's roots and no client
	// certificate, plus what CAFile, CertFile and KeyFile add. Setting it,
	// or any of the files, with a plain URL is an error.
	TLS *tls.Config
	// CAFile is a PEM file of the CAs that sign the broker's certificate;
	// it replaces the system's roots. "" keeps TLS.RootCAs (nil: system).
	CAFile string
	// CertFile and KeyFile are this drone's PEM client certificate and
	// key, for brokers that authenticate drones by certificate. Both or
	// neither. They are read again at each TLS handshake, so a renewed
	// certificate is used from the next connection on.
	CertFile, KeyFile string
	// KeepAlive is the MQTT keep-alive; 0 means DefaultKeepAlive (10 s).
	// The broker publishes the last will about 1.5 × KeepAlive after the
	// drone falls silent (at once if the TCP connection closes). At least
	// 1 s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt (TCP, TLS and CONNACK)
	// and one SUBACK; 0 means DefaultConnectTimeout (10 s).
	ConnectTimeout time.Duration
	// OnlinePayload is the retained state published on connect until the
	// first PublishState; nil means DefaultOnline(Drone),
	// {"drone":"<id>","online":true}. Must be JSON.
	OnlinePayload []byte
	// WillPayload is the offline state: the last will, and what Close
	// publishes; nil means DefaultOffline(Drone),
	// {"drone":"<id>","online":false}. Must be JSON.
	WillPayload []byte
	// Log receives the connection's events; nil means slog.Default().
	Log *slog.Logger
}

// ConfigError is a Config setting that cannot work. Field is the Config
// field's name ("URL", "CertFile"...), so a caller that reads Config from
// the environment can name its variable instead.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "broker: Config." + e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// settings is a checked Config with its defaults filled in.
type settings struct {
	url            *url.URL   // the first of urls
	urls           []*url.URL // Config.URL's nodes, in order
	clientID       string
	drone          string
	topics         TopicSet
	username       string
	password       string
	tls            *tls.Config // nil: plain
	keepAlive      time.Duration
	connectTimeout time.Duration
	online, will   []byte
	log            *slog.Logger
}

// URL schemes and whether they are TLS.
var schemes = map[string]bool{
	"tcp": false, "mqtt": false, "ws": false,
	"ssl": true, "tls": true, "mqtts": true, "wss": true,
}

func (cfg Config) settings() (*settings, error) {
	s := &settings{
		drone:          cfg.Drone,
		username:       cfg.Username,
		password:       cfg.Password,
		keepAlive:      cfg.KeepAlive,
		connectTimeout: cfg.ConnectTimeout,
		log:            cfg.Log,
	}
	if err := CheckDrone(cfg.Drone); err != nil {
		return nil, &ConfigError{Field: "Drone", Err: err}
	}
	s.topics = Topics(cfg.Drone)
	if err := s.parseURL(cfg.URL); err != nil {
		return nil, err
	}
	s.clientID = cfg.ClientID
	if s.clientID == "" {
		s.clientID = ClientIDPrefix + cfg.Drone
	}
	if len(s.clientID) > 65535 {
		return nil, configErr("ClientID", "%d bytes, more than MQTT's 65535", len(s.clientID))
	}
	if cfg.Password != "" && cfg.Username == "" {
		return nil, configErr("Password", "set without Username: MQTT sends a password only with a user name; set Username too")
	}
	if s.url.User != nil && cfg.Username != "" {
		return nil, configErr("Username", "set, and URL carries credentials too: keep one of them")
	}
	switch {
	case s.keepAlive == 0:
		s.keepAlive = DefaultKeepAlive
	case s.keepAlive < time.Second || s.keepAlive > 65535*time.Second:
		return nil, configErr("KeepAlive", "%v: give 1s to 18h12m15s, or 0 for the default %v", s.keepAlive, DefaultKeepAlive)
	}
	switch {
	case s.connectTimeout == 0:
		s.connectTimeout = DefaultConnectTimeout
	case s.connectTimeout < 0:
		return nil, configErr("ConnectTimeout", "%v is negative: give a duration, or 0 for the default %v", s.connectTimeout, DefaultConnectTimeout)
	}
	var err error
	if s.online, err = statePayload("OnlinePayload", cfg.OnlinePayload, DefaultOnline(cfg.Drone)); err != nil {
		return nil, err
	}
	if s.will, err = statePayload("WillPayload", cfg.WillPayload, DefaultOffline(cfg.Drone)); err != nil {
		return nil, err
	}
	if s.tls, err = cfg.tlsConfig(schemes[s.url.Scheme]); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("drone", cfg.Drone)
	return s, nil
}

// ParseURL checks an MQTT broker URL (scheme, host, port), or a
// cluster's nodes comma-separated (all plain or all TLS), and says whether
// it is TLS: the one check of a broker URL, for the drone's Config.URL and
// the ground's. Its errors are *ConfigError for the field "URL".
func ParseURL(raw string) (urls []*url.URL, secure bool, err error) {
	var s settings
	if err := s.parseURL(raw); err != nil {
		return nil, false, err
	}
	return s.urls, schemes[s.url.Scheme], nil
}

// TLSFiles returns the TLS configuration a client gets from a CA file and a
// client certificate and key (each optional) for a secure broker URL, and
// an error for any file given with a plain one: the one check of those
// files, for the drone and the ground. Its errors are *ConfigError for the
// fields CAFile, CertFile and KeyFile.
func TLSFiles(raw string, secure bool, caFile, certFile, keyFile string) (*tls.Config, error) {
	return Config{URL: raw, CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.tlsConfig(secure)
}

func (s *settings) parseURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return configErr("URL", "empty: set the broker's URL, e.g. tcp://broker.local:1883 or ssl://broker.local:8883")
	}
	for _, one := range strings.Split(raw, ",") {
		u, err := parseOneURL(strings.TrimSpace(one))
		if err != nil {
			return err
		}
		if len(s.urls) > 0 && schemes[u.Scheme] != schemes[s.url.Scheme] {
			return configErr("URL", "%q and %q: list a cluster's nodes all plain or all TLS", s.url.Redacted(), u.Redacted())
		}
		if len(s.urls) > 0 && (u.User != nil) != (s.url.User != nil) {
			return configErr("URL", "%q: give every node the same credentials, or none in the URLs (Username)", u.Redacted())
		}
		s.urls = append(s.urls, u)
		s.url = s.urls[0]
	}
	return nil
}

// where names the broker for logs and errors: its URLs, redacted.
func (s *settings) where() string { return Redacted(s.urls) }

// Redacted names a broker's URLs (a cluster's nodes comma-separated) for
// messages and logs, with passwords hidden.
func Redacted(urls []*url.URL) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = u.Redacted()
	}
	return strings.Join(out, ",")
}

func parseOneURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, configErr("URL", "an empty entry in the list: separate the nodes' URLs with single commas")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &ConfigError{Field: "URL", Err: err}
	}
	if _, ok := schemes[u.Scheme]; !ok {
		return nil, configErr("URL", "%q: the scheme must be tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://", u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, configErr("URL", "%q has no host: give scheme://host:port", u.Redacted())
	}
	if u.Port() == "" && u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, configErr("URL", "%q has no port: give %s://%s:1883 (8883 for TLS)", u.Redacted(), u.Scheme, u.Hostname())
	}
	if u.Port() != "" {
		if _, err := net.LookupPort("tcp", u.Port()); err != nil {
			return nil, configErr("URL", "%q: bad port: %w", u.Redacted(), err)
		}
	}
	return u, nil
}

func statePayload(field string, p, def []byte) ([]byte, error) {
	if p == nil {
		return def, nil
	}
	if !json.Valid(p) {
		return nil, configErr(field, "not JSON: the state topic carries JSON; give a JSON object, or nil for the default")
	}
	return append([]byte(nil), p...), nil
}

// tlsConfig returns the TLS configuration for a secure URL, nil for a
// plain one.
func (cfg Config) tlsConfig(secure bool) (*tls.Config, error) {
	if !secure {
		for _, f := range []struct{ name, val string }{{"CAFile", cfg.CAFile}, {"CertFile", cfg.CertFile}, {"KeyFile", cfg.KeyFile}} {
			if f.val != "" {
				return nil, configErr(f.name, "set, but URL %q is plain TCP: use ssl://host:8883 (or wss://) to use TLS", redact(cfg.URL))
			}
		}
		if cfg.TLS != nil {
			return nil, configErr("TLS", "set, but URL %q is plain TCP: use ssl://host:8883 (or wss://) to use TLS", redact(cfg.URL))
		}
		return nil, nil
	}
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, &ConfigError{Field: "CAFile", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("CAFile", "%s holds no PEM certificate: give the broker CA's certificate in PEM", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case cfg.CertFile == "" && cfg.KeyFile == "":
	case cfg.CertFile == "":
		return nil, configErr("CertFile", "empty, but KeyFile is set: give both, or neither")
	case cfg.KeyFile == "":
		return nil, configErr("KeyFile", "empty, but CertFile is set: give both, or neither")
	default:
		if _, err := loadKeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, err
		}
		certFile, keyFile := cfg.CertFile, cfg.KeyFile
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return loadKeyPair(certFile, keyFile)
		}
	}
	return tc, nil
}

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &ConfigError{Field: "CertFile", Err: err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &ConfigError{Field: "KeyFile", Err: err}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, configErr("KeyFile", "%s with CertFile %s: %w (give the PEM certificate and its own private key)", keyFile, certFile, err)
	}
	return &c, nil
}

func redact(raw string) string {
	var out []string
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil {
			out = append(out, "(unparsable URL)")
			continue
		}
		out = append(out, u.Redacted())
	}
	return strings.Join(out, ",")
}
