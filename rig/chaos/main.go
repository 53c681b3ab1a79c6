package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/skyswap/skyswap/agent/containers"
)

// Flags is skyswap-chaos's command line.
type Flags struct {
	Select       Selector
	Faults       []Fault
	Namespace    string // -namespace; "" = containers.DefaultNamespace
	Address      string // -address: containerd's socket; "" = containers.DefaultSocket
	NATSListen   string // -nats-listen: the relay's address; "" = no relay
	NATSUpstream string // -nats-upstream: the NATS server the relay forwards to
	Sim          string // -sim: drone-sim's HTTP base URL
}

// faultList is the repeatable -fault flag.
type faultList []Fault

func (l *faultList) String() string { return fmt.Sprint([]Fault(*l)) }

func (l *faultList) Set(s string) error {
	f, err := ParseFault(s)
	if err != nil {
		return err
	}
	*l = append(*l, f)
	return nil
}

const usage = `skyswap-chaos injects faults into app containers chosen by their labels, on a
schedule, and prints one JSON line per fault and container on stdout (logs go to
stderr). It runs until SIGINT or SIGTERM, or until every fault is spent (with a
NATS relay, until a signal: the instances reach NATS through it), and undoes
what it did on the way out. A test tool: never point it at a drone in service.

  skyswap-chaos -select io.skyswap.app=flight,io.skyswap.version=v2 \
      -fault kind=sigstop,for=300ms,every=10s -fault kind=hog,for=2s,after=5s

Faults (-fault, repeatable; keys after kind in any order):
  kind=sigstop,for=D        SIGSTOP the task, SIGCONT after D
  kind=sigkill              SIGKILL the task
  kind=hog,for=D[,cpus=N]   N busy processes (default 1) in the container's CPU cgroup
  kind=latency,delay=L,for=D  hold the instance's NATS traffic L, for D (needs -nats-listen)
  kind=i2c,for=D[,rate=R][,addr=A]  fail the share R (default 1) of the instance's I2C
                            transactions at address A (default all) in drone-sim (-sim)
  every kind: after=D (first firing; default at once), every=D (period; default
  once), count=N (stop after N firings; default unlimited with every=)

Flags:
`

// ParseFlags reads skyswap-chaos's command line (without the program
// name). Its errors say what to write instead, and it prints them (and
// the usage, for -h: flag.ErrHelp) to output.
func ParseFlags(args []string, output io.Writer) (Flags, error) {
	fl, err := parseFlags(args, output)
	if err != nil && !errors.Is(err, errPrinted) {
		fmt.Fprintf(output, "skyswap-chaos: %v\n(skyswap-chaos -h lists the flags and faults)\n", err)
	}
	return fl, err
}

// errPrinted marks the flag package's errors, which it printed already.
var errPrinted = errors.New("printed")

func parseFlags(args []string, output io.Writer) (Flags, error) {
	var fl Flags
	var sel string
	var faults faultList
	fs := flag.NewFlagSet("skyswap-chaos", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() { fmt.Fprint(output, usage); fs.PrintDefaults() }
	fs.StringVar(&sel, "select", "", "containers to hurt: `label=value` pairs, all must match (io.skyswap.app=flight,io.skyswap.version=v2)")
	fs.Var(&faults, "fault", "a fault and its schedule, such as `kind=sigstop,for=300ms,every=10s` (repeatable)")
	fs.StringVar(&fl.Namespace, "namespace", containers.DefaultNamespace, "containerd namespace of the app containers (drone-agent's AGENT_NAMESPACE)")
	fs.StringVar(&fl.Address, "address", containers.DefaultSocket, "containerd's socket")
	fs.StringVar(&fl.NATSListen, "nats-listen", "", "run the NATS relay for latency faults on this `host:port` (the instances' NATS URL: drone-agent's AGENT_APP_NATS_URL)")
	fs.StringVar(&fl.NATSUpstream, "nats-upstream", "127.0.0.1:4222", "the on-board NATS server the relay forwards to, `host:port`")
	fs.StringVar(&fl.Sim, "sim", DefaultSim, "drone-sim's HTTP `URL`, for i2c faults")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fl, err
		}
		return fl, fmt.Errorf("%w: %w", errPrinted, err)
	}
	if fs.NArg() > 0 {
		return fl, fmt.Errorf("unexpected argument %q: give faults as -fault kind=...", fs.Arg(0))
	}
	var err error
	if fl.Select, err = ParseSelector(sel); err != nil {
		return fl, fmt.Errorf("-select: %w", err)
	}
	if len(faults) == 0 {
		return fl, errors.New("no fault: give at least one, such as -fault kind=sigstop,for=300ms,every=10s")
	}
	fl.Faults = faults
	for _, f := range fl.Faults {
		if f.Kind == Latency && fl.NATSListen == "" {
			return fl, errors.New("kind=latency needs the relay: add -nats-listen 127.0.0.1:4223 (and give the instances nats://127.0.0.1:4223, drone-agent's AGENT_APP_NATS_URL)")
		}
	}
	if fl.NATSListen != "" && fl.NATSUpstream == "" {
		return fl, errors.New("-nats-listen needs -nats-upstream: the on-board NATS server, such as 127.0.0.1:4222")
	}
	return fl, nil
}

// Main is skyswap-chaos without its hidden hog subcommand: it parses args,
// runs until ctx ends or every fault is spent (until ctx ends when it
// relays NATS) and returns the exit code: 0, 1 when it cannot run, 2 for
// a bad command line. Events go to stdout, logs and errors to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := run(ctx, fl, stdout, log); err != nil {
		log.Error("skyswap-chaos stopped", "err", err)
		fmt.Fprintln(stderr, "skyswap-chaos:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, fl Flags, stdout io.Writer, log *slog.Logger) error {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	rt, err := containers.Open(octx, containers.Config{Socket: fl.Address, Namespace: fl.Namespace})
	cancel()
	if err != nil {
		return err
	}
	defer rt.Close()
	cfg := Config{Namespace: fl.Namespace, Sim: fl.Sim, Log: log}
	if fl.NATSListen != "" {
		if cfg.Relay, err = ListenRelay(fl.NATSListen, fl.NATSUpstream, log); err != nil {
			return err
		}
		defer cfg.Relay.Close()
	}
	log.Info("skyswap-chaos running", "select", fl.Select.String(), "faults", len(fl.Faults), "namespace", fl.Namespace,
		"nats_relay", fl.NATSListen, "nats_upstream", fl.NATSUpstream)
	if err := New(rt, stdout, cfg).Run(ctx, fl.Select, fl.Faults); err != nil {
		return err
	}
	if cfg.Relay != nil && ctx.Err() == nil {
		log.Info("every fault is spent; relaying NATS until SIGINT or SIGTERM (the instances reach NATS through it)")
		<-ctx.Done()
	}
	log.Info("skyswap-chaos stopping; every fault undone")
	return nil
}
