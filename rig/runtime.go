package rig

import (
	"context"
	"fmt"
	"io"
	"slices"
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
	extra map[string][]string
	procs map[string]*Proc
}

var _ coordinator.Runtime = (*Runtime)(nil)

// AddEnv gives instance env (KEY=value) on top of Env, from its next
// start on.
func (r *Runtime) AddEnv(instance string, env ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	r.extra[instance] = env
}

func (r *Runtime) init() {
	if r.procs == nil {
		r.extra, r.procs = map[string][]string{}, map[string]*Proc{}
	}
}

// StartOwner cold-starts instance from bin as the first owner at epoch 1.
func (r *Runtime) StartOwner(instance, bin string) (*Proc, error) {
	return r.start(coordinator.Spec{Instance: instance, Image: bin, Mode: coordinator.ModeCold, Epoch: 1})
}

// Start implements coordinator.Runtime: s.Image is the binary to run.
func (r *Runtime) Start(_ context.Context, s coordinator.Spec) error {
	_, err := r.start(s)
	return err
}

func (r *Runtime) start(s coordinator.Spec) (*Proc, error) {
	if s.Image == "" {
		return nil, fmt.Errorf("rig: start %s: no binary", s.Instance)
	}
	r.mu.Lock()
	r.init()
	extra := r.extra[s.Instance]
	r.mu.Unlock()
	env := append(append(slices.Clone(r.Env), "FLIGHT_INSTANCE="+s.Instance), s.Env()...)
	p, err := Start(s.Image, append(env, extra...), r.Logs)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.procs[s.Instance] = p
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
