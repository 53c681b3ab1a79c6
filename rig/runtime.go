package rig

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/skyswap/skyswap/handoff/coordinator"
)

// Runtime runs flight instances as processes for the hand-over
// coordinator (the agent does the same with containers). It implements
// coordinator.Runtime.
type Runtime struct {
	// Env is given to every instance: FLIGHT_BUS, FLIGHT_NATS, mission
	// settings.
	Env  []string
	Logs io.Writer // nil = discard
	// Grace is how long Stop waits after SIGTERM; 0 = 30 s (an owner
	// lands first).
	Grace time.Duration

	mu    sync.Mutex
	bins  map[string]string
	extra map[string][]string
	procs map[string]*Proc
}

var _ coordinator.Runtime = (*Runtime)(nil)

// Prepare says which binary, with which extra environment, runs instance.
func (r *Runtime) Prepare(instance, bin string, env ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bins == nil {
		r.bins, r.extra, r.procs = map[string]string{}, map[string][]string{}, map[string]*Proc{}
	}
	r.bins[instance], r.extra[instance] = bin, env
}

// StartOwner cold-starts instance as the first owner at epoch 1.
func (r *Runtime) StartOwner(instance string) (*Proc, error) {
	return r.start(instance, "FLIGHT_START=cold", "FLIGHT_EPOCH=1")
}

// Start implements coordinator.Runtime.
func (r *Runtime) Start(_ context.Context, s coordinator.Spec) error {
	env := []string{"FLIGHT_START=" + string(s.Mode)}
	if s.Epoch > 0 {
		env = append(env, "FLIGHT_EPOCH="+strconv.FormatUint(s.Epoch, 10))
	}
	_, err := r.start(s.Instance, env...)
	return err
}

func (r *Runtime) start(instance string, env ...string) (*Proc, error) {
	r.mu.Lock()
	bin, ok := r.bins[instance]
	extra := r.extra[instance]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("rig: no binary prepared for instance %q", instance)
	}
	all := append(append(append([]string{}, r.Env...), "FLIGHT_INSTANCE="+instance), env...)
	p, err := Start(bin, append(all, extra...), r.Logs)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.procs[instance] = p
	r.mu.Unlock()
	return p, nil
}

// Proc returns instance's process, or nil.
func (r *Runtime) Proc(instance string) *Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.procs[instance]
}

// Stop implements coordinator.Runtime: SIGTERM, then SIGKILL after Grace.
func (r *Runtime) Stop(_ context.Context, instance string) error {
	p := r.Proc(instance)
	if p == nil {
		return nil
	}
	grace := r.Grace
	if grace == 0 {
		grace = 30 * time.Second
	}
	err := p.Stop(grace)
	r.mu.Lock()
	delete(r.procs, instance)
	r.mu.Unlock()
	select {
	case <-p.Done():
		return nil // an exit status after SIGTERM is not a failure to stop
	default:
		return err
	}
}

// KillAll kills every instance still running.
func (r *Runtime) KillAll() {
	r.mu.Lock()
	procs := r.procs
	r.procs = map[string]*Proc{}
	r.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
}
