package swarm

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/labels"
)

// Sim is how a simulated drone's updates behave. Every zero value means
// the default documented on the field.
type Sim struct {
	// Pull is how long an image pull takes; 0 means 200 ms.
	Pull time.Duration
	// Phase is how long each hand-over phase takes (prepare, shadow,
	// synced, cutover, probation, commit); 0 means 200 ms.
	Phase time.Duration
	// FailRate is the share of updates that fail, from 0 to 1: half abort
	// before the cut-over, half revert in probation. Which drones fail is
	// decided by a hash of the drone, the image and Seed, so a run is
	// repeatable.
	FailRate float64
	// FailImage restricts failures to images whose reference contains it
	// ("flight:v3"); "" means any image.
	FailImage string
	// Seed varies which drones fail.
	Seed uint64
	// PulledBytes is what a pull reports fetched; 0 means 2 MiB.
	PulledBytes int64
}

func (s Sim) pull() time.Duration  { return cmpOr(s.Pull, 200*time.Millisecond) }
func (s Sim) phase() time.Duration { return cmpOr(s.Phase, 200*time.Millisecond) }

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Fails reports whether drone's update to image fails, and how: aborted
// (before the cut-over) or reverted.
func (s Sim) Fails(drone, image string) (fails, revert bool) {
	if s.FailRate <= 0 || s.FailImage != "" && !strings.Contains(image, s.FailImage) {
		return false, false
	}
	h := fnv.New64a()
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], s.Seed)
	h.Write(seed[:])
	h.Write([]byte(drone + "\x00" + image))
	v := h.Sum64()
	u := float64(v>>11) / (1 << 53) // [0, 1)
	return u < s.FailRate, v&1 == 1
}

// images is the agent's Images for a simulated drone: an image's labels
// come from its reference (HOST/APP:VERSION@sha256:...), a pull takes
// Sim.Pull.
type images struct{ sim Sim }

var _ agent.Images = images{}

func (im images) Lookup(_ context.Context, ref string) (containers.Image, error) {
	name, _, _ := strings.Cut(ref, "@")
	app, version := name[strings.LastIndexByte(name, '/')+1:], ""
	if i := strings.LastIndexByte(app, ':'); i >= 0 {
		app, version = app[:i], app[i+1:]
	}
	return containers.Image{Ref: ref, Labels: map[string]string{labels.App: app, labels.Version: version,
		labels.Strategy: string(strategy.Handoff)}}, nil
}

func (im images) Pull(ctx context.Context, ref string, _ func(containers.Progress)) (containers.Image, error) {
	img, _ := im.Lookup(ctx, ref)
	if err := mono.Sleep(ctx, im.sim.pull()); err != nil {
		return img, err
	}
	img.Fetched = cmpOrInt(im.sim.PulledBytes, 2<<20)
	return img, nil
}

func (im images) RemoveImage(context.Context, string) error { return nil }

func cmpOrInt(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// instances is the agent's Instances for a simulated drone: nothing runs.
type instances struct{}

func (instances) Start(context.Context, coordinator.Spec) error { return nil }
func (instances) Stop(context.Context, string) error            { return nil }

// updater is the agent's Updater for a simulated drone: it walks the
// hand-over's phases with Sim.Phase between them and ends as Sim decides.
type updater struct {
	drone string
	sim   Sim

	mu    sync.Mutex
	epoch uint64
}

var _ agent.Updater = (*updater)(nil)

func (u *updater) Run(ctx context.Context, p coordinator.Plan) (coordinator.Result, error) {
	u.mu.Lock()
	u.epoch++
	epoch := u.epoch
	u.mu.Unlock()
	fails, revert := u.sim.Fails(u.drone, p.Image)
	phases := []string{report.PhasePrepare, report.PhaseShadow, report.PhaseSynced, report.PhaseCutover, report.PhaseProbation, report.PhaseCommit}
	res := coordinator.Result{Outcome: report.OutcomeCommitted, Strategy: string(strategy.Handoff), Owner: p.Candidate, Epoch: epoch}
	switch {
	case fails && revert:
		phases = []string{report.PhasePrepare, report.PhaseShadow, report.PhaseSynced, report.PhaseCutover, report.PhaseProbation,
			report.PhaseRevert, report.PhaseDone}
		res = coordinator.Result{Outcome: report.OutcomeReverted, Strategy: res.Strategy, Owner: p.Owner, Epoch: epoch,
			Reason: "the candidate diverged in probation"}
	case fails:
		phases = []string{report.PhasePrepare, report.PhaseShadow, report.PhaseAbort}
		res = coordinator.Result{Outcome: report.OutcomeAborted, Strategy: res.Strategy, Owner: p.Owner,
			Reason: "the candidate did not sync"}
	}
	for _, ph := range phases {
		if err := mono.Sleep(ctx, u.sim.phase()); err != nil {
			return coordinator.Result{Outcome: report.OutcomeAborted, Owner: p.Owner, Reason: err.Error()}, err
		}
		if p.OnEvent != nil {
			p.OnEvent(handoff.Event{Phase: ph, Strategy: res.Strategy, From: p.Owner, To: p.Candidate, Epoch: epoch,
				Wall: time.Now().UTC().Format(time.RFC3339Nano)})
		}
	}
	if res.Reason != "" {
		return res, errors.New("simulated: " + res.Outcome + ": " + res.Reason) // as the coordinator says it
	}
	return res, nil
}
