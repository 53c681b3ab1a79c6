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
//	dronectl rollout [flags] IMAGE
//	    takes IMAGE across many drones in waves through the ground station
//	    (-ground, $DRONECTL_GROUND, default http://127.0.0.1:8080/), which
//	    runs the rollout and keeps its record (controller/rollout): targets
//	    -drones all or d1,d2 or -select site=field-a (the drones' labels),
//	    -waves 1,10%,50%,100%, -max-failed 5% -min-done 10 (per wave),
//	    -timeout, -ttl, -soak, -on-abort stop|rollback, -parallel. It prints
//	    a line per wave as it changes (done, failed, in_progress,
//	    unreached), redrawn in place on a terminal, or with -o json the
//	    record at the end; -detach prints the id and returns.
//	dronectl rollout status|pause|resume|cancel [-o json] ID
//	dronectl rollout list
//	    the ground's rollouts: show one, control it, list them.
//	dronectl ground [flags]
//	    runs the ground station (controller/ground) until SIGINT or SIGTERM:
//	    the fleet's MQTT broker and OCI registry (embedded unless -broker
//	    and -registry name others), and the web page on -listen
//	    (127.0.0.1:8080) with the fleet live, each drone's plots, camera
//	    and update timeline, and push and rollback signed with the
//	    ground's key (-key; by default DATA/ground.key, made on first
//	    start). -data (~/.skyswap/ground) keeps the broker's sessions and
//	    retained messages, the registry's images and the key. Its log is
//	    JSON lines on stdout; dronectl ground -h lists every flag.
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
// bad flags. dronectl rollout (and rollout status, of a rollout that has
// ended): 0 when every target was updated, 3 when it completed with drones
// failed or unreached (under -max-failed), 4 when a wave went over
// -max-failed (stopped or rolled back), 5 when it was canceled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
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
  dronectl rollout [-drones all|ID,... | -select KEY=VALUE,...] [-waves 1,10%,50%,100%] [-max-failed 5%] [-min-done 10]
                  [-on-abort stop|rollback] [-soak 0] [-timeout 5m] [-ttl 2m] [-ground URL] [-o json] IMAGE
                                              take IMAGE across the fleet in waves, through the ground station
  dronectl rollout status|pause|resume|cancel ID, dronectl rollout list
  dronectl ground [-listen 127.0.0.1:8080] [-data DIR] [-broker URL] [-registry HOST:PORT] ...
                                              the ground station: broker, registry and the web page
flags of push, rollback and status (defaults from the environment):
  -broker URL ($DRONECTL_BROKER) -drone ID ($DRONECTL_DRONE) -key FILE ($DRONECTL_KEY) [-key-id ID]
  [-user U -password P] [-ca FILE -cert FILE -client-key FILE] [-ttl 2m] [-timeout 5m]
  push and rollback: [-registry HOST:PORT ($DRONECTL_REGISTRY)] [-plain-http] [-app flight] [-strategy S] [-id ID]
exit status: 0 committed, 1 refused/aborted/reverted/failed/timeout or other failure, 2 bad flags;
  rollout: 0 every drone updated, 3 some failed or unreached, 4 aborted (over -max-failed), 5 canceled
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
	case "ground":
		err = groundCmd(ctx, args[1:], s)
	case "rollout":
		err = rolloutCmd(ctx, args[1:], s)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(s.stdout, usage)
		return 0
	default:
		fmt.Fprintf(s.stderr, "dronectl: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ee *errExit
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		fmt.Fprintf(s.stderr, "dronectl %s: %s\n", args[0], ee.msg)
		return ee.code
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
