package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/labels"
)

// Containers is what chaos needs of containerd, in one namespace
// (implemented by *containers.Runtime).
type Containers interface {
	List(ctx context.Context) ([]containers.Status, error)
	Signal(ctx context.Context, id string, sig syscall.Signal) error
}

var _ Containers = (*containers.Runtime)(nil)

// Clock is the schedule's time; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

// DefaultSim is the virtual drone's HTTP address when drone-sim runs with
// its default SIM_HTTP.
const DefaultSim = "http://127.0.0.1:7460"

// InstanceLabel is the label that names an app instance; a container
// without it is its own instance (the agent names containers by instance).
const InstanceLabel = labels.Instance

// Config holds the optional settings of New. The zero value of each field
// means the default noted beside it.
type Config struct {
	// Namespace is the containerd namespace the Containers list, for
	// messages; "" = containers.DefaultNamespace.
	Namespace string
	// Relay carries the instances' NATS traffic for latency faults; nil =
	// latency faults touch nothing and say how to start one.
	Relay *Relay
	Sim   string // drone-sim's HTTP base URL, for i2c faults; "" = DefaultSim
	// HogCommand is the busy-looping child a hog starts, to which
	// "-for <duration>" is added; nil = this program with its hidden
	// "hog" subcommand (RunHog), which is right for skyswap-chaos.
	HogCommand []string
	Log        *slog.Logger // nil = discard
	Clock      Clock        // nil = the real clock
}

// Chaos injects faults into the containers a selector chooses.
type Chaos struct {
	c   Containers
	out *emitter
	cfg Config
	sim simClient
}

// New returns a Chaos over c that writes its events to out.
func New(c Containers, out io.Writer, cfg Config) *Chaos {
	if cfg.Namespace == "" {
		cfg.Namespace = containers.DefaultNamespace
	}
	if cfg.Sim == "" {
		cfg.Sim = DefaultSim
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	return &Chaos{c: c, out: newEmitter(out), cfg: cfg,
		sim: simClient{base: cfg.Sim, hc: &http.Client{Timeout: 5 * time.Second}}}
}

// Run fires faults at the containers sel chooses, each on its own
// schedule, until every fault is spent or ctx ends. A fault on when ctx
// ends is undone before Run returns. Run fails only if it cannot write
// its events; a fault that touches nothing says so in its event.
func (ch *Chaos) Run(ctx context.Context, sel Selector, faults []Fault) error {
	if len(sel) == 0 || len(faults) == 0 {
		return fmt.Errorf("chaos: Run needs a selector and at least one fault")
	}
	if ch.cfg.HogCommand == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("chaos: cannot find this program to start hogs with (%w): set Config.HogCommand", err)
		}
		ch.cfg.HogCommand = []string{exe, HogSubcommand}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, f := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ch.schedule(ctx, sel, f); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err // an event could not be written
	}
	return nil
}

// schedule fires f after f.After, then every f.Every from the first
// firing's start, f.firings() times (0 = until ctx ends).
func (ch *Chaos) schedule(ctx context.Context, sel Selector, f Fault) error {
	if ch.cfg.Clock.Sleep(ctx, f.After) != nil {
		return nil
	}
	start := ch.cfg.Clock.Now()
	for n := 1; f.firings() == 0 || n <= f.firings(); n++ {
		if err := ch.fire(ctx, sel, f, n); err != nil {
			return err
		}
		if f.Every == 0 {
			return nil
		}
		next := start.Add(time.Duration(n) * f.Every)
		if ch.cfg.Clock.Sleep(ctx, max(0, next.Sub(ch.cfg.Clock.Now()))) != nil {
			return nil
		}
	}
	return nil
}

// fire injects the n-th firing of f into every selected container, waits
// f.For (less if ctx ends) and undoes it. Only an output error is returned.
func (ch *Chaos) fire(ctx context.Context, sel Selector, f Fault, n int) error {
	if ctx.Err() != nil {
		return nil
	}
	// An injection is not cut short by a stop: it runs to the point where
	// it can be undone.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	targets, err := ch.targets(ictx, sel)
	if err != nil || len(targets) == 0 {
		if err == nil {
			err = fmt.Errorf("no container matches %s in namespace %s (ctr -n %s containers ls lists them; check -select and -namespace)",
				sel, ch.cfg.Namespace, ch.cfg.Namespace)
		}
		return ch.emit(ch.event(f, n, containers.Status{}), err)
	}
	var on []touched
	for _, t := range targets {
		if ctx.Err() != nil {
			break // stopping: touch no more
		}
		ev := ch.event(f, n, t)
		u, err := ch.inject(ictx, f, t, &ev)
		if u != nil {
			on = append(on, touched{t, u})
		}
		if err := ch.emit(ev, err); err != nil {
			ch.undo(ctx, f, n, on)
			return err
		}
	}
	if len(on) > 0 {
		ch.cfg.Clock.Sleep(ctx, f.For)
	}
	return ch.undo(ctx, f, n, on)
}

// undo undoes what fire touched; an undo that fails gets its own event.
// Only an output error is returned.
func (ch *Chaos) undo(ctx context.Context, f Fault, n int, on []touched) error {
	// The undo gets its own time: f.For may have outlasted the injection's.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, x := range on {
		if err := x.undo(uctx); err != nil {
			ch.cfg.Log.Error("undo failed", "fault", f.Kind, "container", x.t.ID, "err", err)
			ev := ch.event(f, n, x.t)
			ev.Undo = true
			if err := ch.emit(ev, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// touched is a container a firing touched and how to undo it.
type touched struct {
	t    containers.Status
	undo undo
}

// undo ends what an injection started.
type undo func(context.Context) error

// targets lists the containers sel chooses.
func (ch *Chaos) targets(ctx context.Context, sel Selector) ([]containers.Status, error) {
	all, err := ch.c.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers in namespace %s: %w", ch.cfg.Namespace, err)
	}
	var out []containers.Status
	for _, c := range all {
		if sel.Match(c.Labels) {
			out = append(out, c)
		}
	}
	return out, nil
}

// event is the line for f's n-th firing on t, before the injection says
// how it went.
func (ch *Chaos) event(f Fault, n int, t containers.Status) Event {
	return Event{Fault: f.Kind, Container: t.ID, Labels: t.Labels, Pid: t.Pid, ForMs: f.For.Milliseconds(),
		Spec: f.String(), N: n}
}

// emit stamps ev with the time and err, and writes it.
func (ch *Chaos) emit(ev Event, err error) error {
	ev.T = ch.cfg.Clock.Now().UTC().Format(time.RFC3339Nano)
	ev.MonoNs = mono.Now()
	ev.OK = err == nil
	if err != nil {
		ev.Error = err.Error()
		if !ev.Undo {
			ch.cfg.Log.Warn("fault touched nothing", "fault", ev.Fault, "container", ev.Container, "err", err)
		}
	}
	if err := ch.out.emit(ev); err != nil {
		return fmt.Errorf("chaos: write event: %w", err)
	}
	return nil
}

// instance is the app instance t runs: its NATS connection name and bus
// client name.
func instance(t containers.Status) string {
	if id := t.Labels[InstanceLabel]; id != "" {
		return id
	}
	return t.ID
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return mono.Sleep(ctx, d) }
