// Command dronectl is the ground side of skyswap: it makes keys, signs
// commands, and sends them to a drone over MQTT, following what the drone
// reports (controller/push does the work).
//
//	dronectl keygen -out DIR [-name ground]
//	    writes DIR/NAME.key (mode 0600) and DIR/NAME.pub and prints the key
//	    id; list the .pub in the drone's AGENT_TRUSTED_KEYS as ID=PATH.
//	dronectl sign -key FILE -drone ID [-kind update] [-app flight]
//	        [-image NAME[:TAG]@sha256:HEX] [-strategy handoff] [-ttl 2m] [-id ID]
//	    prints the signed command JSON (agent/command) on stdout, for
//	    fleet/<drone>/cmd.
//	dronectl push [flags] IMAGE
//	    resolves IMAGE (flight:v2, HOST:PORT/flight:v2, or pinned by digest)
//	    to its digest, sends the drone an update to it, and prints one line
//	    per event of the update as it arrives (elapsed_ms, phase, outcome,
//	    bytes, error...) until the outcome.
//	dronectl rollback [flags] [-image IMAGE]
//	    sends a rollback to the previous release (or to IMAGE) and follows
//	    it the same way.
//	dronectl status [flags]
//	    asks the drone for its state and prints the state JSON.
//
// push, rollback and status share these flags, each defaulting to an
// environment variable so that a shell (or the demo) sets them once:
//
//	-broker URL      $DRONECTL_BROKER     MQTT broker, tcp://host:1883 or ssl://host:8883
//	-drone ID        $DRONECTL_DRONE      the drone
//	-key FILE        $DRONECTL_KEY        signing key (dronectl keygen)
//	-key-id ID       $DRONECTL_KEY_ID     the key's id on the drone (default: its KeyID)
//	-user, -password $DRONECTL_USER, $DRONECTL_PASSWORD   broker credentials
//	-ca, -cert, -client-key  $DRONECTL_CA, $DRONECTL_CERT, $DRONECTL_CLIENT_KEY  TLS files
//	-ttl 2m          how long the command stays valid (a drone out of reach
//	                 gets it when it reconnects, if before then)
//	-timeout 5m      how long to follow (status: 15s)
//
// and push and rollback also -registry HOST:PORT ($DRONECTL_REGISTRY, for
// short names), -plain-http ($DRONECTL_PLAIN_HTTP; default: true for a
// loopback registry), -app flight, -strategy, -id.
//
// Exit status: 0 when the drone committed or deployed the release (status:
// answered); 1 when it refused, aborted, reverted or failed, when no
// outcome came within -timeout (the drone may still be working: dronectl
// status tells), or on any other failure, with the reason on stderr; 2 on
// bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], sys{stdout: os.Stdout, stderr: os.Stderr, now: time.Now, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// sys is what a command takes from its process; tests give their own.
type sys struct {
	stdout, stderr io.Writer
	now            func() time.Time
	getenv         func(string) string
}

const usage = `usage:
  dronectl keygen -out DIR [-name ground]
  dronectl sign -key FILE -drone ID [-kind update] [-app flight] [-image REF@sha256:HEX] [-strategy S] [-ttl 2m] [-id ID]
  dronectl push [flags] IMAGE                 update the drone's app to IMAGE (flight:v2, HOST:PORT/flight:v2) and follow it
  dronectl rollback [flags] [-image IMAGE]    return to the previous release (or IMAGE) and follow it
  dronectl status [flags]                     print the drone's state JSON
flags of push, rollback and status (defaults from the environment):
  -broker URL ($DRONECTL_BROKER) -drone ID ($DRONECTL_DRONE) -key FILE ($DRONECTL_KEY) [-key-id ID]
  [-user U -password P] [-ca FILE -cert FILE -client-key FILE] [-ttl 2m] [-timeout 5m]
  push and rollback: [-registry HOST:PORT ($DRONECTL_REGISTRY)] [-plain-http] [-app flight] [-strategy S] [-id ID]
exit status: 0 committed, 1 refused/aborted/reverted/failed/timeout or other failure, 2 bad flags
run dronectl COMMAND -h for its flags
`

// errUsage marks a bad invocation: exit status 2. errFlags is one the flag
// package has already explained on stderr.
var (
	errUsage = errors.New("usage")
	errFlags = fmt.Errorf("%w: bad flags", errUsage)
)

// usageErr is a bad-flag error; its text names the flag.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func run(ctx context.Context, args []string, s sys) int {
	if len(args) == 0 {
		fmt.Fprint(s.stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "keygen":
		err = keygen(args[1:], s)
	case "sign":
		err = sign(args[1:], s)
	case "push":
		err = pushCmd(ctx, args[1:], s)
	case "rollback":
		err = rollbackCmd(ctx, args[1:], s)
	case "status":
		err = statusCmd(ctx, args[1:], s)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(s.stdout, usage)
		return 0
	default:
		fmt.Fprintf(s.stderr, "dronectl: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlags):
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintf(s.stderr, "dronectl %s: %s\n", args[0], strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	default:
		// "dronectl push: push: ..." says the package twice.
		fmt.Fprintf(s.stderr, "dronectl %s: %s\n", args[0], strings.TrimPrefix(err.Error(), "push: "))
		return 1
	}
}

// parseFlags parses args into fs; positional, if not nil, receives the
// non-flag arguments, which may come before, between or after the flags
// (dronectl push flight:v2 -drone d1). Without it, any is an error.
func parseFlags(fs *flag.FlagSet, args []string, positional *[]string) error {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errFlags
		}
		if fs.NArg() == 0 {
			return nil
		}
		if positional == nil {
			return usageErr("unexpected argument %q: every value goes with a flag (-h lists them)", fs.Arg(0))
		}
		*positional = append(*positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func keygen(args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl keygen", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	out := fs.String("out", "", "directory for NAME.key and NAME.pub (created if missing)")
	name := fs.String("name", "ground", "file name of the key pair, without extension")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("-out is required: the directory to write the key pair into")
	}
	if *name == "" || *name != filepath.Base(*name) || strings.HasPrefix(*name, ".") {
		return usageErr("-name %q must be a plain file name, without directories", *name)
	}
	keyPath := filepath.Join(*out, *name+".key")
	pubPath := filepath.Join(*out, *name+".pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists: keygen never overwrites a key; choose another -name or -out", p)
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	pub, priv, err := command.GenerateKey()
	if err != nil {
		return err
	}
	if err := command.WritePrivateKey(keyPath, priv); err != nil {
		return err
	}
	if err := command.WritePublicKey(pubPath, pub); err != nil {
		return err
	}
	id := command.KeyID(pub)
	fmt.Fprintln(s.stdout, id)
	fmt.Fprintf(s.stderr, "wrote %s (secret: keep it on the ground) and %s\ntrust it on a drone with AGENT_TRUSTED_KEYS=%s=/path/to/%s.pub\n",
		keyPath, pubPath, id, *name)
	return nil
}

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

func sign(args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl sign", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	keyPath := fs.String("key", "", "private key file (from dronectl keygen)")
	keyID := fs.String("key-id", "", "key id the drone knows the key by (default: its KeyID, as keygen printed)")
	drone := fs.String("drone", "", "target drone id")
	kind := fs.String("kind", string(command.KindUpdate), "update, rollback or status")
	app := fs.String("app", "", "app name, e.g. flight (required for update and rollback)")
	image := fs.String("image", "", "image pinned by digest, NAME[:TAG]@sha256:HEX (required for update)")
	strategy := fs.String("strategy", "", "handoff, stop-start or start-then-stop (default: the image's label)")
	ttl := fs.Duration("ttl", push.DefaultTTL, "how long the command stays valid, at most "+command.DefaultMaxLifetime.String())
	id := fs.String("id", "", "idempotency key, [A-Za-z0-9._-]{1,64} (default: time and random)")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if *keyPath == "" {
		return usageErr("-key is required: the private key file from dronectl keygen")
	}
	if *drone == "" {
		return usageErr("-drone is required: the target drone's id")
	}
	if *ttl <= 0 {
		return usageErr("-ttl %s must be whole seconds between 1s and %s", *ttl, command.DefaultMaxLifetime)
	}
	priv, err := command.ReadPrivateKey(*keyPath)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	c, err := push.Signer{Key: priv, KeyID: *keyID, TTL: *ttl, Now: s.now}.Sign(command.Command{
		ID:       *id,
		Kind:     command.Kind(*kind),
		Drone:    *drone,
		App:      *app,
		Image:    *image,
		Strategy: *strategy,
	})
	if err != nil {
		return flagError(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.stdout, "%s\n", js)
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

func pushCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl push", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: dronectl push [flags] IMAGE\n  IMAGE: flight:v2 (in -registry), HOST:PORT/flight:v2, or pinned NAME@sha256:HEX\n")
		fs.PrintDefaults()
	}
	var l link
	var r release
	l.register(fs, s, push.DefaultTimeout)
	if err := r.register(fs, s); err != nil {
		return err
	}
	var images []string
	if err := parseFlags(fs, args, &images); err != nil {
		return err
	}
	switch len(images) {
	case 0:
		return usageErr("IMAGE is required: dronectl push [flags] IMAGE, e.g. dronectl push flight:v2")
	case 1:
	default:
		return usageErr("unexpected argument %q: push takes one IMAGE", images[1])
	}
	return follow(ctx, s, &l, &r, command.KindUpdate, images[0])
}

func rollbackCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl rollback", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var l link
	var r release
	l.register(fs, s, push.DefaultTimeout)
	if err := r.register(fs, s); err != nil {
		return err
	}
	image := fs.String("image", "", "the release to return to (flight:v1, HOST:PORT/flight:v1 or pinned); default: the previous committed one")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	return follow(ctx, s, &l, &r, command.KindRollback, *image)
}

// follow checks the flags, pins image (if any), sends the command and
// prints its events as they come.
func follow(ctx context.Context, s sys, l *link, r *release, kind command.Kind, image string) error {
	cfg, err := l.config(s)
	if err != nil {
		return err
	}
	cfg.App = r.app
	req := push.Request{Kind: kind, Image: image, Strategy: r.strategy, ID: r.id}
	if err := push.Check(cfg, req); err != nil {
		return flagError(err)
	}
	if image != "" {
		if req.Image, err = r.resolve(ctx, image); err != nil {
			return err
		}
	}
	var sent time.Time
	cfg.OnSent = func(_ command.Command, at time.Time) { sent = at }
	cfg.OnEvent = func(e report.Event) { fmt.Fprintln(s.stdout, push.Line(e, s.now().Sub(sent))) }
	_, err = push.Run(ctx, cfg, req)
	return flagError(err)
}

func statusCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl status", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var l link
	l.register(fs, s, push.DefaultStatusTimeout)
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	cfg, err := l.config(s)
	if err != nil {
		return err
	}
	st, err := push.Status(ctx, cfg)
	if st.Drone != "" {
		// Also on a timeout: the state the broker kept is worth seeing.
		b, merr := json.Marshal(st)
		if merr != nil {
			return merr
		}
		fmt.Fprintf(s.stdout, "%s\n", b)
	}
	return flagError(err)
}
