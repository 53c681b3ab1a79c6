package handofftest

import (
	"context"
	"slices"
	"sync"

	"github.com/skyswap/skyswap/handoff/coordinator"
)

// Stopper is something a Runtime can stop.
type Stopper interface {
	Stop() Exit
}

// Call is one call the Coordinator made on a Runtime.
type Call struct {
	Op       string // "start" or "stop"
	Instance string
	Spec     coordinator.Spec // start only
}

// Runtime is a fake coordinator.Runtime. Start records the call and runs
// OnStart (nil: it does nothing, an instance that never comes up); what
// OnStart returns is stopped by Stop. Instances started outside it (the
// owner) are registered with Add.
type Runtime struct {
	OnStart func(ctx context.Context, s coordinator.Spec) (Stopper, error)

	mu      sync.Mutex
	calls   []Call
	running map[string]Stopper
	exits   map[string]Exit
}

var _ coordinator.Runtime = (*Runtime)(nil)

// Add registers an instance started outside the runtime.
func (r *Runtime) Add(instance string, s Stopper) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running == nil {
		r.running = map[string]Stopper{}
	}
	r.running[instance] = s
}

// Start implements coordinator.Runtime.
func (r *Runtime) Start(ctx context.Context, s coordinator.Spec) error {
	r.mu.Lock()
	r.calls = append(r.calls, Call{Op: "start", Instance: s.Instance, Spec: s})
	r.mu.Unlock()
	if r.OnStart == nil {
		return nil
	}
	st, err := r.OnStart(ctx, s)
	if err != nil {
		return err
	}
	if st != nil {
		r.Add(s.Instance, st)
	}
	return nil
}

// Stop implements coordinator.Runtime. Stopping an instance it does not know is
// not an error (the process is gone).
func (r *Runtime) Stop(_ context.Context, instance string) error {
	r.mu.Lock()
	r.calls = append(r.calls, Call{Op: "stop", Instance: instance})
	st := r.running[instance]
	delete(r.running, instance)
	r.mu.Unlock()
	if st != nil {
		e := st.Stop()
		r.mu.Lock()
		if r.exits == nil {
			r.exits = map[string]Exit{}
		}
		r.exits[instance] = e
		r.mu.Unlock()
	}
	return nil
}

// Calls returns the calls made so far.
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Started reports whether Start was called for instance.
func (r *Runtime) Started(instance string) bool {
	for _, c := range r.Calls() {
		if c.Op == "start" && c.Instance == instance {
			return true
		}
	}
	return false
}

// Stopped reports whether Stop was called for instance, and how its loop
// ended if the runtime ran it.
func (r *Runtime) Stopped(instance string) (bool, Exit) {
	stopped := false
	for _, c := range r.Calls() {
		if c.Op == "stop" && c.Instance == instance {
			stopped = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return stopped, r.exits[instance]
}

// StopAll stops every instance still running (test cleanup).
func (r *Runtime) StopAll() {
	r.mu.Lock()
	all := r.running
	r.running = nil
	r.mu.Unlock()
	for _, s := range all {
		s.Stop()
	}
}
