package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/skyswap/skyswap/controller/broker"
	station "github.com/skyswap/skyswap/controller/ground"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/registry"
)

func groundCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl ground", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var cfg station.Config
	fs.StringVar(&cfg.Listen, "listen", or(s.env("DRONECTL_GROUND_LISTEN"), station.DefaultListen),
		"the page's host:port; anything but loopback needs -token or -tls-client-ca ($DRONECTL_GROUND_LISTEN)")
	fs.StringVar(&cfg.Token, "token", "", "token the page and its API require; prefer the variable, which ps does not show ($DRONECTL_GROUND_TOKEN)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", s.env("DRONECTL_GROUND_TLS_CERT"), "PEM certificate: serve the page over HTTPS ($DRONECTL_GROUND_TLS_CERT)")
	fs.StringVar(&cfg.TLSKey, "tls-key", s.env("DRONECTL_GROUND_TLS_KEY"), "PEM key of -tls-cert ($DRONECTL_GROUND_TLS_KEY)")
	fs.StringVar(&cfg.TLSClientCA, "tls-client-ca", s.env("DRONECTL_GROUND_TLS_CLIENT_CA"), "PEM CAs whose client certificates browsers must show ($DRONECTL_GROUND_TLS_CLIENT_CA)")
	fs.StringVar(&cfg.DataDir, "data", or(s.env("DRONECTL_GROUND_DATA"), defaultData()), "the embedded broker's and registry's data, and the key ($DRONECTL_GROUND_DATA)")
	fs.StringVar(&cfg.KeyFile, "key", s.env("DRONECTL_KEY"), "signing key; default DATA/ground.key, made on first start ($DRONECTL_KEY)")
	fs.StringVar(&cfg.Link.KeyID, "key-id", s.env("DRONECTL_KEY_ID"), "key id the drones know the key by; default its KeyID ($DRONECTL_KEY_ID)")
	fs.StringVar(&cfg.BrokerURL, "broker", s.env("DRONECTL_BROKER"), "the fleet's MQTT broker (Mosquitto, EMQX, NATS); default: the embedded one ($DRONECTL_BROKER)")
	fs.StringVar(&cfg.BrokerListen, "mqtt-listen", broker.DefaultAddr, "the embedded broker's MQTT host:port (drones connect here); anything but loopback needs -mqtt-users")
	users := fs.String("mqtt-users", s.env("DRONECTL_GROUND_MQTT_USERS"), "file of the embedded broker's users, user:password a line (mode 600): "+
		broker.GroundUser+" and each drone id, with the per-drone ACL ($DRONECTL_GROUND_MQTT_USERS)")
	fs.StringVar(&cfg.Registry, "registry", s.env("DRONECTL_REGISTRY"), "the fleet's registry HOST:PORT; default: the embedded one ($DRONECTL_REGISTRY)")
	fs.StringVar(&cfg.RegistryListen, "registry-listen", registry.DefaultAddr, "the embedded registry's host:port (drones pull, make images REGISTRY= pushes here)")
	fs.BoolVar(&cfg.PlainHTTP, "plain-http", false, "reach -registry over plain HTTP (loopback registries always are)")
	fs.StringVar(&cfg.Link.Username, "user", s.env("DRONECTL_USER"), "broker user name ($DRONECTL_USER)")
	fs.StringVar(&cfg.Link.Password, "password", "", "broker password; prefer the variable ($DRONECTL_PASSWORD)")
	fs.StringVar(&cfg.Link.CAFile, "ca", s.env("DRONECTL_CA"), "PEM CA of the broker's certificate, for ssl:// ($DRONECTL_CA)")
	fs.StringVar(&cfg.Link.CertFile, "cert", s.env("DRONECTL_CERT"), "PEM client certificate for the broker ($DRONECTL_CERT)")
	fs.StringVar(&cfg.Link.KeyFile, "client-key", s.env("DRONECTL_CLIENT_KEY"), "PEM key of -cert ($DRONECTL_CLIENT_KEY)")
	fs.StringVar(&cfg.Link.App, "app", push.DefaultApp, "the app the page updates")
	fs.DurationVar(&cfg.Link.TTL, "ttl", push.DefaultTTL, "how long a command from the page stays valid")
	fs.DurationVar(&cfg.Link.Timeout, "timeout", push.DefaultTimeout, "how long to follow a command from the page")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if *users != "" {
		var err error
		if cfg.BrokerPasswords, err = broker.ReadPasswords(*users); err != nil {
			return fmt.Errorf("-mqtt-users: %w", err)
		}
	}
	cfg.Token = or(cfg.Token, s.env("DRONECTL_GROUND_TOKEN"))
	cfg.Link.Password = or(cfg.Link.Password, s.env("DRONECTL_PASSWORD"))
	cfg.Log = slog.New(slog.NewJSONHandler(s.stdout, nil))
	st, err := station.Start(ctx, cfg)
	if err != nil {
		return flagError(err)
	}
	fmt.Fprintf(s.stderr, "dronectl ground: %s (Ctrl-C stops)\n", st.URL)
	<-ctx.Done()
	st.Close()
	return nil
}

// defaultData is ~/.skyswap/ground, or a directory in the working one
// when there is no home.
func defaultData() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".skyswap", "ground")
	}
	return filepath.Join(home, ".skyswap", "ground")
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
