// Package rollouttest is what tests of the rollouts' users need: Fake, an
// in-memory stand-in for the ground's rollout.Manager behind its API
// (controller/ground/web.Rollouts), whose records the test moves on.
package rollouttest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/skyswap/skyswap/controller/rollout"
)

// Fake keeps rollouts in memory. Start checks the spec as the Manager
// does and plans one wave of the listed drones; the test moves a record
// on with Set, or with OnGet, which runs at each Get.
type Fake struct {
	// OnGet, when not nil, may change the record each Get returns (n is
	// how many Gets of it came before).
	OnGet func(rec *rollout.Record, n int)

	mu    sync.Mutex
	recs  map[string]*rollout.Record
	gets  map[string]int
	specs []rollout.Spec
}

// Start records spec and returns a running rollout of its Drones (or of
// d1, d2, d3 for All and Select), all pending in one wave.
func (f *Fake) Start(_ context.Context, spec rollout.Spec) (rollout.Record, error) {
	if err := spec.Check(); err != nil {
		return rollout.Record{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recs == nil {
		f.recs, f.gets = map[string]*rollout.Record{}, map[string]int{}
	}
	f.specs = append(f.specs, spec)
	drones := spec.Drones
	if len(drones) == 0 {
		drones = []string{"d1", "d2", "d3"}
	}
	rec := &rollout.Record{ID: fmt.Sprintf("%s%08d", rollout.IDPrefix, len(f.specs)), Spec: spec, State: rollout.Running,
		Created: time.Now().UTC(), Waves: []rollout.Wave{{Size: len(drones), Started: time.Now().UTC()}}}
	for _, d := range drones {
		rec.Drones = append(rec.Drones, rollout.Drone{ID: d, Update: rollout.Cmd{Status: rollout.Pending}})
	}
	f.recs[rec.ID] = rec
	return *rec, nil
}

// Specs returns the specs Start was given.
func (f *Fake) Specs() []rollout.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.specs)
}

// Set replaces a record.
func (f *Fake) Set(rec rollout.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs[rec.ID] = &rec
}

// Get returns a record, after OnGet.
func (f *Fake) Get(id string) (rollout.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.recs[id]
	if !ok {
		return rollout.Record{}, fmt.Errorf("%w: %q", rollout.ErrNotFound, id)
	}
	if f.OnGet != nil {
		f.OnGet(rec, f.gets[id])
	}
	f.gets[id]++
	return *rec, nil
}

// List returns every record, newest first.
func (f *Fake) List() []rollout.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rollout.Record
	for _, r := range f.recs {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b rollout.Record) int { return -a.Created.Compare(b.Created) })
	return out
}

// Pause pauses a running rollout.
func (f *Fake) Pause(id string) (rollout.Record, error) {
	return f.control(id, rollout.Running, rollout.Paused)
}

// Resume resumes a paused rollout.
func (f *Fake) Resume(id string) (rollout.Record, error) {
	return f.control(id, rollout.Paused, rollout.Running)
}

// Cancel cancels a live rollout.
func (f *Fake) Cancel(id string) (rollout.Record, error) { return f.control(id, "", rollout.Canceled) }

func (f *Fake) control(id string, from, to rollout.State) (rollout.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.recs[id]
	switch {
	case !ok:
		return rollout.Record{}, fmt.Errorf("%w: %q", rollout.ErrNotFound, id)
	case from != "" && rec.State != from || !rec.State.Live():
		return rollout.Record{}, fmt.Errorf("%w: rollout %s is %s", rollout.ErrState, id, rec.State)
	}
	rec.State = to
	return *rec, nil
}
