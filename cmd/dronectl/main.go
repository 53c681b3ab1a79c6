// Command dronectl is the ground side of skyswap. For now it makes keys
// and signs commands; pushing them over MQTT comes later.
//
//	dronectl keygen -out DIR [-name ground]
//	    writes DIR/NAME.key (mode 0600) and DIR/NAME.pub and prints the key
//	    id; list the .pub in the drone's AGENT_TRUSTED_KEYS as ID=PATH.
//	dronectl sign -key FILE -drone ID [-kind update] [-app flight]
//	        [-image NAME[:TAG]@sha256:HEX] [-strategy handoff] [-ttl 2m] [-id ID]
//	    prints the signed command JSON (agent/command) on stdout, for
//	    fleet/<drone>/cmd.
//
// Bad flags exit with status 2, other failures with 1.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/command"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

const usage = `usage:
  dronectl keygen -out DIR [-name ground]
  dronectl sign -key FILE -drone ID [-kind update] [-app flight] [-image REF@sha256:HEX] [-strategy S] [-ttl 2m] [-id ID]
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

func run(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "keygen":
		err = keygen(args[1:], stdout, stderr)
	case "sign":
		err = sign(args[1:], stdout, stderr, now)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "dronectl: unknown command %q\n%s", args[0], usage)
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
		fmt.Fprintf(stderr, "dronectl %s: %s\n", args[0], strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	default:
		fmt.Fprintf(stderr, "dronectl %s: %v\n", args[0], err)
		return 1
	}
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlags
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q: every value goes with a flag (-h lists them)", fs.Arg(0))
	}
	return nil
}

func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dronectl keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for NAME.key and NAME.pub (created if missing)")
	name := fs.String("name", "ground", "file name of the key pair, without extension")
	if err := parseFlags(fs, args); err != nil {
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
	fmt.Fprintln(stdout, id)
	fmt.Fprintf(stderr, "wrote %s (secret: keep it on the ground) and %s\ntrust it on a drone with AGENT_TRUSTED_KEYS=%s=/path/to/%s.pub\n",
		keyPath, pubPath, id, *name)
	return nil
}

// flagOf maps a command field to the sign flag that sets it.
var flagOf = map[string]string{
	"id": "-id", "kind": "-kind", "drone": "-drone", "app": "-app", "image": "-image",
	"strategy": "-strategy", "issued": "-ttl", "expires": "-ttl", "key_id": "-key-id",
}

func sign(args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("dronectl sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "private key file (from dronectl keygen)")
	keyID := fs.String("key-id", "", "key id the drone knows the key by (default: its KeyID, as keygen printed)")
	drone := fs.String("drone", "", "target drone id")
	kind := fs.String("kind", string(command.KindUpdate), "update, rollback or status")
	app := fs.String("app", "", "app name, e.g. flight (required for update and rollback)")
	image := fs.String("image", "", "image pinned by digest, NAME[:TAG]@sha256:HEX (required for update)")
	strategy := fs.String("strategy", "", "handoff, stop-start or start-then-stop (default: the image's label)")
	ttl := fs.Duration("ttl", 2*time.Minute, "how long the command stays valid, at most "+command.DefaultMaxLifetime.String())
	id := fs.String("id", "", "idempotency key, [A-Za-z0-9._-]{1,64} (default: time and random)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyPath == "" {
		return usageErr("-key is required: the private key file from dronectl keygen")
	}
	if *drone == "" {
		return usageErr("-drone is required: the target drone's id")
	}
	if *ttl <= 0 || *ttl%time.Second != 0 || *ttl > command.DefaultMaxLifetime {
		return usageErr("-ttl %s must be whole seconds between 1s and %s (drones refuse longer lifetimes)", *ttl, command.DefaultMaxLifetime)
	}
	priv, err := command.ReadPrivateKey(*keyPath)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	if *keyID == "" {
		*keyID = command.KeyID(priv.Public().(ed25519.PublicKey))
	}
	issued := now().UTC().Truncate(time.Second)
	if *id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		*id = issued.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	c, err := command.Sign(command.Command{
		ID:       *id,
		Kind:     command.Kind(*kind),
		Drone:    *drone,
		App:      *app,
		Image:    *image,
		Strategy: *strategy,
		Issued:   issued,
		Expires:  issued.Add(*ttl),
	}, *keyID, priv)
	var fe *command.FieldError
	if errors.As(err, &fe) {
		return usageErr("%s: %s", flagOf[fe.Field], fe.Msg)
	}
	if err != nil {
		return err
	}
	js, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", js)
	return err
}
