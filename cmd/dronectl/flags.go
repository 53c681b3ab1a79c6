package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/push"
)

// flagOf maps a command field to the flag that sets it.
var flagOf = map[string]string{
	"id": "-id", "kind": "-kind", "drone": "-drone", "app": "-app", "image": "-image",
	"strategy": "-strategy", "issued": "-ttl", "expires": "-ttl", "key_id": "-key-id",
}

// flagOfConfig maps a push.Config field to the flag that sets it.
var flagOfConfig = map[string]string{
	"Broker": "-broker", "Drone": "-drone", "Key": "-key", "KeyID": "-key-id",
	"Username": "-user", "Password": "-password", "CAFile": "-ca", "CertFile": "-cert", "KeyFile": "-client-key",
	"TTL": "-ttl", "Timeout": "-timeout", "App": "-app",
}

// flagError turns an error about a field into a usage error naming its
// flag; other errors pass unchanged.
func flagError(err error) error {
	var fe *command.FieldError
	if errors.As(err, &fe) {
		return usageErr("%s: %s", flagOf[fe.Field], fe.Msg)
	}
	var ce *push.ConfigError
	if errors.As(err, &ce) {
		return usageErr("%s: %v", flagOfConfig[ce.Field], ce.Err)
	}
	return err
}

// link holds the flags of every command that talks to a drone.
type link struct {
	broker, drone, key, keyID           string
	user, password, ca, cert, clientKey string
	ttl, timeout                        time.Duration
}

// env returns the trimmed value of an environment variable.
func (s sys) env(key string) string { return strings.TrimSpace(s.getenv(key)) }

func (l *link) register(fs *flag.FlagSet, s sys, timeout time.Duration) {
	fs.StringVar(&l.broker, "broker", s.env("DRONECTL_BROKER"), "MQTT broker URL, tcp://host:1883 or ssl://host:8883 ($DRONECTL_BROKER)")
	fs.StringVar(&l.drone, "drone", s.env("DRONECTL_DRONE"), "target drone id ($DRONECTL_DRONE)")
	fs.StringVar(&l.key, "key", s.env("DRONECTL_KEY"), "private key file that signs commands, from dronectl keygen ($DRONECTL_KEY)")
	fs.StringVar(&l.keyID, "key-id", s.env("DRONECTL_KEY_ID"), "key id the drone knows the key by; default its KeyID ($DRONECTL_KEY_ID)")
	fs.StringVar(&l.user, "user", s.env("DRONECTL_USER"), "broker user name ($DRONECTL_USER)")
	// Not the flag's default: -h would print it.
	fs.StringVar(&l.password, "password", "", "broker password; prefer the variable, which ps does not show ($DRONECTL_PASSWORD)")
	fs.StringVar(&l.ca, "ca", s.env("DRONECTL_CA"), "PEM file of the CA of the broker's certificate, for ssl:// ($DRONECTL_CA)")
	fs.StringVar(&l.cert, "cert", s.env("DRONECTL_CERT"), "PEM client certificate for the broker, for ssl:// ($DRONECTL_CERT)")
	fs.StringVar(&l.clientKey, "client-key", s.env("DRONECTL_CLIENT_KEY"), "PEM key of -cert ($DRONECTL_CLIENT_KEY)")
	fs.DurationVar(&l.ttl, "ttl", push.DefaultTTL, "how long the command stays valid, whole seconds up to "+command.DefaultMaxLifetime.String()+
		"; a drone out of reach gets it when it reconnects, if before then")
	fs.DurationVar(&l.timeout, "timeout", timeout, "how long to follow the command; the drone may go on after it")
}

// config checks the flags that are required and reads the key.
func (l *link) config(s sys) (push.Config, error) {
	if l.password == "" {
		l.password = s.env("DRONECTL_PASSWORD")
	}
	switch {
	case l.broker == "":
		return push.Config{}, usageErr("-broker is required: the MQTT broker, e.g. tcp://127.0.0.1:1883 (or set $DRONECTL_BROKER)")
	case l.drone == "":
		return push.Config{}, usageErr("-drone is required: the target drone's id (or set $DRONECTL_DRONE)")
	case l.key == "":
		return push.Config{}, usageErr("-key is required: the private key file from dronectl keygen (or set $DRONECTL_KEY)")
	case l.ttl <= 0:
		return push.Config{}, usageErr("-ttl %s must be whole seconds between 1s and %s", l.ttl, command.DefaultMaxLifetime)
	case l.timeout <= 0:
		return push.Config{}, usageErr("-timeout %s must be positive", l.timeout)
	}
	priv, err := command.ReadPrivateKey(l.key)
	if err != nil {
		return push.Config{}, fmt.Errorf("-key: %w", err)
	}
	cfg := push.Config{
		Broker: l.broker, Drone: l.drone, Key: priv, KeyID: l.keyID,
		Username: l.user, Password: l.password, CAFile: l.ca, CertFile: l.cert, KeyFile: l.clientKey,
		TTL: l.ttl, Timeout: l.timeout, Now: s.now,
		Log: slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{ReplaceAttr: dropTime})),
	}
	if err := push.Check(cfg, push.Request{}); err != nil {
		return push.Config{}, flagError(err)
	}
	return cfg, nil
}

// dropTime leaves the time out of log lines: a person is reading them now.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// release holds the flags of push and rollback beyond link's.
type release struct {
	registry, app, strategy, id string
	plainHTTP                   optBool
}

func (r *release) register(fs *flag.FlagSet, s sys) error {
	fs.StringVar(&r.registry, "registry", s.env("DRONECTL_REGISTRY"), "registry HOST:PORT of short image names like flight:v2 ($DRONECTL_REGISTRY)")
	fs.Var(&r.plainHTTP, "plain-http", "reach the registry over plain HTTP; default true for a loopback registry ($DRONECTL_PLAIN_HTTP)")
	fs.StringVar(&r.app, "app", push.DefaultApp, "the app to update")
	fs.StringVar(&r.strategy, "strategy", "", "handoff, stop-start or start-then-stop (default: the image's label)")
	fs.StringVar(&r.id, "id", "", "idempotency key, [A-Za-z0-9._-]{1,64} (default: time and random)")
	if v := s.env("DRONECTL_PLAIN_HTTP"); v != "" {
		if err := r.plainHTTP.Set(v); err != nil {
			return usageErr("$DRONECTL_PLAIN_HTTP=%q: want true or false", v)
		}
	}
	return nil
}

// resolve pins image (see push.Resolve).
func (r *release) resolve(ctx context.Context, image string) (string, error) {
	plain := r.plainHTTP.v
	if !r.plainHTTP.set {
		plain = loopback(image, r.registry)
	}
	return push.Resolve(ctx, image, r.registry, plain)
}

// loopback reports whether the registry of image (or def, for a short
// name) is on this machine.
func loopback(image, def string) bool {
	host := def
	if first, _, ok := strings.Cut(image, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host = first
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// optBool is a boolean flag that knows whether it was set.
type optBool struct{ set, v bool }

func (b *optBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.set, b.v = true, v
	return nil
}

func (b *optBool) IsBoolFlag() bool { return true }
