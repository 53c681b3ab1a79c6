package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTopics(t *testing.T) {
	got := Topics("d-1_x")
	want := TopicSet{
		Cmd:       "fleet/d-1_x/cmd",
		State:     "fleet/d-1_x/state",
		Events:    "fleet/d-1_x/events",
		Telemetry: "fleet/d-1_x/telemetry",
		Camera:    "fleet/d-1_x/camera",
	}
	if got != want {
		t.Fatalf("Topics = %+v, want %+v", got, want)
	}
}

func TestCheckDrone(t *testing.T) {
	for _, id := range []string{"d1", "D-1_a", strings.Repeat("x", 64), "0"} {
		if err := CheckDrone(id); err != nil {
			t.Errorf("CheckDrone(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a/b", "+", "#", "d.1", "d 1", "dé", strings.Repeat("x", 65), "a\x00"} {
		if err := CheckDrone(id); err == nil {
			t.Errorf("CheckDrone(%q) = nil, want an error", id)
		}
	}
}

// The default state payloads are a wire format: ground stations parse
// them. testdata holds what this version emits.
func TestDefaultStateGolden(t *testing.T) {
	for name, got := range map[string][]byte{
		"state-online-default.json":  DefaultOnline("d1"),
		"state-offline-default.json": DefaultOffline("d1"),
	} {
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.TrimSpace(want)) {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "d1.pem"), filepath.Join(dir, "d1.key")
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	ok := Config{URL: "tcp://127.0.0.1:1883", Drone: "d1"}
	tests := []struct {
		name   string
		edit   func(*Config)
		field  string
		says   string // in the message
		isFile bool   // wraps fs.ErrNotExist
	}{
		{"empty URL", func(c *Config) { c.URL = "" }, "URL", "empty", false},
		{"no scheme", func(c *Config) { c.URL = "broker.local:1883" }, "URL", "scheme", false},
		{"http", func(c *Config) { c.URL = "http://broker.local:1883" }, "URL", "scheme", false},
		{"no port", func(c *Config) { c.URL = "tcp://broker.local" }, "URL", "no port", false},
		{"no host", func(c *Config) { c.URL = "tcp://:1883" }, "URL", "no host", false},
		{"empty node in a list", func(c *Config) { c.URL = "tcp://a:1883,,tcp://b:1883" }, "URL", "empty entry", false},
		{"bad node in a list", func(c *Config) { c.URL = "tcp://a:1883,tcp://b" }, "URL", "no port", false},
		{"plain and TLS nodes", func(c *Config) { c.URL = "tcp://a:1883,ssl://b:8883" }, "URL", "all plain or all TLS", false},
		{"credentials on one node", func(c *Config) { c.URL = "tcp://a:1883,tcp://u:p@b:1883" }, "URL", "same credentials", false},
		{"CA file on plain nodes", func(c *Config) { c.URL = "tcp://a:1883,tcp://b:1883"; c.CAFile = missing }, "CAFile", "tcp://a:1883,tcp://b:1883", false},
		{"empty drone", func(c *Config) { c.Drone = "" }, "Drone", "empty", false},
		{"drone with slash", func(c *Config) { c.Drone = "d1/cmd" }, "Drone", "only [A-Za-z0-9_-]", false},
		{"drone wildcard", func(c *Config) { c.Drone = "+" }, "Drone", "only [A-Za-z0-9_-]", false},
		{"drone too long", func(c *Config) { c.Drone = strings.Repeat("d", 65) }, "Drone", "more than 64", false},
		{"password alone", func(c *Config) { c.Password = "x" }, "Password", "Username", false},
		{"two credentials", func(c *Config) { c.URL = "tcp://u:p@h:1883"; c.Username = "u" }, "Username", "URL carries", false},
		{"keepalive negative", func(c *Config) { c.KeepAlive = -time.Second }, "KeepAlive", "1s", false},
		{"keepalive sub-second", func(c *Config) { c.KeepAlive = time.Millisecond }, "KeepAlive", "1s", false},
		{"connect timeout negative", func(c *Config) { c.ConnectTimeout = -1 }, "ConnectTimeout", "negative", false},
		{"will not JSON", func(c *Config) { c.WillPayload = []byte("offline") }, "WillPayload", "not JSON", false},
		{"online not JSON", func(c *Config) { c.OnlinePayload = []byte("{") }, "OnlinePayload", "not JSON", false},
		{"TLS on plain URL", func(c *Config) { c.TLS = &tls.Config{} }, "TLS", "ssl://", false},
		{"CA file on plain URL", func(c *Config) { c.CAFile = missing }, "CAFile", "ssl://", false},
		{"missing CA file", func(c *Config) { c.URL = "ssl://h:8883"; c.CAFile = missing }, "CAFile", "missing.pem", true},
		{"CA file not PEM", func(c *Config) { c.URL = "ssl://h:8883"; c.CAFile = cert }, "CAFile", "no PEM", false},
		{"missing cert file", func(c *Config) { c.URL = "ssl://h:8883"; c.CertFile = missing; c.KeyFile = key }, "CertFile", "missing.pem", true},
		{"missing key file", func(c *Config) { c.URL = "mqtts://h:8883"; c.CertFile = cert; c.KeyFile = missing }, "KeyFile", "missing.pem", true},
		{"key without cert", func(c *Config) { c.URL = "ssl://h:8883"; c.KeyFile = key }, "CertFile", "KeyFile is set", false},
		{"cert without key", func(c *Config) { c.URL = "ssl://h:8883"; c.CertFile = cert }, "KeyFile", "CertFile is set", false},
		{"bad key pair", func(c *Config) { c.URL = "ssl://h:8883"; c.CertFile = cert; c.KeyFile = key }, "KeyFile", "private key", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := cfg.settings()
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("Field = %q, want %q (err: %v)", ce.Field, tt.field, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "Config."+tt.field) || !strings.Contains(msg, tt.says) {
				t.Errorf("message %q should name Config.%s and say %q", msg, tt.field, tt.says)
			}
			if tt.isFile != errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", !tt.isFile, tt.isFile)
			}
			if strings.Contains(msg, ":p@") {
				t.Errorf("message %q shows the URL's password", msg)
			}
			// Connect refuses it the same way, at once.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if _, cerr := Connect(ctx, cfg, func([]byte) {}); !errors.As(cerr, &ce) {
				t.Errorf("Connect: %v, want the *ConfigError", cerr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := Config{URL: "ssl://broker.local:8883", Drone: "d7"}.settings()
	if err != nil {
		t.Fatal(err)
	}
	if s.clientID != "skyswap-agent-d7" || s.keepAlive != DefaultKeepAlive || s.connectTimeout != DefaultConnectTimeout {
		t.Errorf("defaults: client id %q, keep-alive %v, connect timeout %v", s.clientID, s.keepAlive, s.connectTimeout)
	}
	if s.tls == nil || s.tls.RootCAs != nil || s.tls.MinVersion != tls.VersionTLS12 {
		t.Errorf("ssl:// without TLS settings: want TLS 1.2+ with the system roots, got %+v", s.tls)
	}
	if !bytes.Equal(s.will, DefaultOffline("d7")) || !bytes.Equal(s.online, DefaultOnline("d7")) {
		t.Errorf("payloads %s, %s", s.online, s.will)
	}
	c, err := Config{URL: " tcp://n1:1883, tcp://n2:1884 ,tcp://n3:1885", Drone: "d7"}.settings()
	if err != nil || len(c.urls) != 3 || c.url != c.urls[0] || c.where() != "tcp://n1:1883,tcp://n2:1884,tcp://n3:1885" {
		t.Errorf("a cluster's nodes: %v, urls %v", err, c.urls)
	}
	p, err := Config{URL: "ws://broker.local/mqtt", Drone: "d7"}.settings()
	if err != nil || p.tls != nil {
		t.Errorf("ws:// without a port: %v, tls %v", err, p.tls)
	}
	if _, err := Connect(context.Background(), Config{URL: "tcp://h:1", Drone: "d1"}, nil); err == nil || !strings.Contains(err.Error(), "onCommand") {
		t.Errorf("Connect with a nil onCommand: %v", err)
	}
}
