package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/skyswap/skyswap/agent/containers"
)

// inject starts f on t, fills ev with what it touched, and returns how to
// undo it (nil when there is nothing to undo) and why it failed.
func (ch *Chaos) inject(ctx context.Context, f Fault, t containers.Status, ev *Event) (undo, error) {
	if !t.Running || t.Pid == 0 {
		how := "has no task"
		if t.Exited {
			how = "exited with code " + strconv.FormatUint(uint64(t.ExitCode), 10)
		}
		return nil, fmt.Errorf("%s matches but is not running (it %s)", t.ID, how)
	}
	switch f.Kind {
	case SigStop:
		if err := ch.c.Signal(ctx, t.ID, syscall.SIGSTOP); err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			err := ch.c.Signal(ctx, t.ID, syscall.SIGCONT)
			if errors.Is(err, containers.ErrNotFound) {
				return nil // gone meanwhile: nothing left to continue
			}
			return err
		}, nil
	case SigKill:
		return nil, ch.c.Signal(ctx, t.ID, syscall.SIGKILL)
	case Hog:
		return ch.hog(f, t, ev)
	case Latency:
		return ch.latency(f, t, ev)
	case I2C:
		return ch.i2c(ctx, f, t, ev)
	}
	return nil, fmt.Errorf("chaos: unknown fault kind %q", f.Kind)
}

// hog starts f.CPUs busy processes in t's CPU cgroup.
func (ch *Chaos) hog(f Fault, t containers.Status, ev *Event) (undo, error) {
	ev.CPUs = max(f.CPUs, 1)
	dir, err := CPUCgroup(t.Pid)
	if err != nil {
		return nil, err
	}
	ev.Cgroup = dir
	h, err := startHog(ch.cfg.HogCommand, dir, ev.CPUs, f.For)
	if err != nil {
		return nil, err
	}
	ev.HogPids = h.pids()
	return func(context.Context) error { return h.stop() }, nil
}

// latency holds t's NATS connections on the relay for f.Delay.
func (ch *Chaos) latency(f Fault, t containers.Status, ev *Event) (undo, error) {
	ev.DelayMs = f.Delay.Milliseconds()
	if ch.cfg.Relay == nil {
		return nil, errors.New("no NATS relay: start skyswap-chaos with -nats-listen and -nats-upstream, and the app instances with that address as their NATS URL (drone-agent: AGENT_APP_NATS_URL)")
	}
	name := instance(t)
	n, release := ch.cfg.Relay.Delay(name, f.Delay)
	if n == 0 {
		release()
		addr := ch.cfg.Relay.Addr()
		return nil, fmt.Errorf("no NATS connection named %s passes through the relay at %s: give the app instances FLIGHT_NATS=nats://%s (drone-agent: AGENT_APP_NATS_URL=nats://%s)",
			name, addr, addr, addr)
	}
	ev.Conns = n
	return func(context.Context) error { release(); return nil }, nil
}

// i2c starts an I2C error burst on t's bus transactions in the simulator.
func (ch *Chaos) i2c(ctx context.Context, f Fault, t containers.Status, ev *Event) (undo, error) {
	ev.Rate = f.Rate
	if ev.Rate == 0 {
		ev.Rate = 1
	}
	if f.Addr != 0 {
		ev.Addr = "0x" + strconv.FormatUint(uint64(f.Addr), 16)
	}
	name := instance(t)
	if err := ch.sim.startI2C(ctx, name, f); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return ch.sim.endI2C(ctx, name) }, nil
}
