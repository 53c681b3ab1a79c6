// Package instances runs an app's instances as containers for the
// hand-over coordinator: it is the coordinator.Runtime of the drone agent, over
// the containerd adapter. An instance is one container of one release (an
// image pinned by digest); its role in the hand-over is given by the
// FLIGHT_START and FLIGHT_EPOCH it is started with.
package instances

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/images/labels"
)

// Containers is what this package needs of the container runtime
// (implemented by *containers.Runtime).
type Containers interface {
	Start(ctx context.Context, s containers.Spec) error
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
}

var _ Containers = (*containers.Runtime)(nil)

// Waiter is a Containers that can wait for a container's process to end
// (implemented by *containers.Runtime). With it the runtime reports exits
// to the coordinator (coordinator.ExitReporter).
type Waiter interface {
	Wait(ctx context.Context, id string) (<-chan containers.ExitStatus, error)
}

// Config is what every instance of the app gets. The zero value of each
// optional field means the default noted beside it.
type Config struct {
	// Env is given to every instance: FLIGHT_BUS, FLIGHT_NATS, mission
	// settings. The runtime adds FLIGHT_INSTANCE, FLIGHT_START and, when
	// it has one, FLIGHT_EPOCH.
	Env     []string
	Mounts  []containers.Mount
	Devices []string
	// Grace is how long Stop waits after SIGTERM before SIGKILL; 0 = 30 s
	// (an owner lands first).
	Grace time.Duration
	// Labels are put on every container; the runtime adds
	// io.skyswap.instance.
	Labels map[string]string
	// RealTime is the CPU time per second each instance may use under
	// SCHED_FIFO (containers.Spec.RealTime); 0 = none, the default.
	RealTime time.Duration
}

// Runtime starts and stops instances. It implements coordinator.Runtime.
type Runtime struct {
	c   Containers
	cfg Config

	mu    sync.Mutex
	exits map[string]string // instance -> how its process ended, since its last start
	gen   map[string]int    // instance -> start count, so a stale waiter cannot report
}

var (
	_ coordinator.Runtime      = (*Runtime)(nil)
	_ coordinator.ExitReporter = (*Runtime)(nil)
)

// New returns a runtime over c.
func New(c Containers, cfg Config) *Runtime {
	if cfg.Grace == 0 {
		cfg.Grace = 30 * time.Second
	}
	return &Runtime{c: c, cfg: cfg, exits: map[string]string{}, gen: map[string]int{}}
}

// Start implements coordinator.Runtime: a container of s.Image (pulled,
// pinned by digest) named s.Instance.
func (r *Runtime) Start(ctx context.Context, s coordinator.Spec) error {
	if s.Image == "" {
		return fmt.Errorf("instances: start %s: no image", s.Instance)
	}
	ls := map[string]string{labels.Instance: s.Instance}
	maps.Copy(ls, r.cfg.Labels)
	env := append(append(slices.Clone(r.cfg.Env), "FLIGHT_INSTANCE="+s.Instance), s.Env()...)
	err := r.c.Start(ctx, containers.Spec{
		ID: s.Instance, Image: s.Image, Env: env, Mounts: r.cfg.Mounts, Devices: r.cfg.Devices, Labels: ls,
		RealTime: r.cfg.RealTime,
	})
	if err != nil {
		return fmt.Errorf("instances: start %s: %w", s.Instance, err)
	}
	r.watch(s.Instance)
	return nil
}

// watch records how instance's process ends, if the containers can tell.
func (r *Runtime) watch(instance string) {
	w, ok := r.c.(Waiter)
	if !ok {
		return
	}
	r.mu.Lock()
	r.gen[instance]++
	gen := r.gen[instance]
	delete(r.exits, instance)
	r.mu.Unlock()
	ch, err := w.Wait(context.Background(), instance)
	if err != nil {
		return // gone already: Stop or the next Start settles it
	}
	go func() {
		e := <-ch
		how := "exit code " + strconv.FormatUint(uint64(e.Code), 10)
		if e.Code > 128 {
			how = "killed by signal " + strconv.FormatUint(uint64(e.Code-128), 10)
		}
		if e.Err != nil {
			how = e.Err.Error()
		}
		r.mu.Lock()
		if r.gen[instance] == gen {
			r.exits[instance] = how
		}
		r.mu.Unlock()
	}()
}

// Exited implements coordinator.ExitReporter.
func (r *Runtime) Exited(instance string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	how, ok := r.exits[instance]
	return how, ok
}

// Stop implements coordinator.Runtime: SIGTERM, SIGKILL after the grace
// period, then the container is removed. An absent instance is not an
// error.
func (r *Runtime) Stop(ctx context.Context, instance string) error {
	errStop := r.c.Stop(ctx, instance, r.cfg.Grace)
	errRemove := r.c.Remove(ctx, instance)
	r.mu.Lock()
	delete(r.exits, instance)
	r.gen[instance]++ // its waiter reports nothing now
	r.mu.Unlock()
	if err := errors.Join(errStop, errRemove); err != nil {
		return fmt.Errorf("instances: stop %s: %w", instance, err)
	}
	return nil
}
