package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/journal"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/images/labels"
)

// Lister lists containers (implemented by *containers.Runtime).
type Lister interface {
	List(ctx context.Context) ([]containers.Status, error)
}

// Flying watches app's state frames for wait and returns the instance
// publishing with the highest epoch ("" if none publishes): the one that
// drives the hardware now.
func Flying(ctx context.Context, ob Onboard, app string, wait time.Duration) (string, error) {
	ch := make(chan []byte, 256)
	stop, err := ob.Subscribe(handoff.SubjectsFor(app).Frames(), func(data []byte) {
		select {
		case ch <- data:
		default: // the newest epoch shows again in the next frames
		}
	})
	if err != nil {
		return "", fmt.Errorf("agent: watch frames: %w", err)
	}
	defer stop()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var best string
	var epoch uint64
	for {
		select {
		case <-ctx.Done():
			return best, ctx.Err()
		case <-timer.C:
			return best, nil
		case data := <-ch:
			if f, err := handoff.DecodeFrame(data); err == nil && f.Instance != "" && f.Epoch >= epoch {
				best, epoch = f.Instance, f.Epoch
			}
		}
	}
}

// Recover brings the agent back to a safe state after a restart: of app's
// running instances it keeps the one flying (journal.Recover's rule), stops
// and removes the others, settles an interrupted update in the journal, and
// reports what it found.
func (a *Agent) Recover(ctx context.Context, app string, lister Lister, flying string) error {
	a.mu.Lock() // no command runs meanwhile
	defer a.mu.Unlock()
	list, err := lister.List(ctx)
	if err != nil {
		return fmt.Errorf("agent: recover: %w", err)
	}
	var running []string
	images := map[string]containers.Status{}
	for _, s := range list {
		if s.Labels[labels.App] == app && s.Running {
			running = append(running, s.ID)
			images[s.ID] = s
		} else if s.Labels[labels.App] == app {
			// An exited instance is of no use: clear it away.
			a.inst.Stop(ctx, s.ID)
		}
	}
	st := a.j.State()
	d := journal.Recover(st, app, running, flying)
	for _, id := range d.Remove {
		if err := a.inst.Stop(ctx, id); err != nil {
			a.log.Warn("recover: stop", "instance", id, "err", err)
		}
	}
	if st.Update != nil && st.Update.App == app {
		var err error
		if d.Commit {
			_, err = a.j.Commit()
		} else {
			err = a.j.End()
		}
		if err != nil {
			return fmt.Errorf("agent: recover: %w", err)
		}
	}
	if d.Adopt {
		if err := a.adopt(app, images[d.Keep]); err != nil {
			return fmt.Errorf("agent: recover: %w", err)
		}
	}
	a.unknown = d.Unknown
	if d.Outcome != "" || len(d.Remove) > 0 || d.Adopt {
		ev := Event{App: app, Phase: report.PhaseRecovered, Outcome: d.Outcome, To: d.Keep}
		if st.Update != nil {
			ev.Command, ev.From = st.Update.Command, st.Update.From.ID
		}
		a.emit(ctx, ev)
	}
	a.log.Info("recovered", "app", app, "keep", d.Keep, "adopted", d.Adopt, "removed", d.Remove, "outcome", d.Outcome)
	return nil
}

// adopt records a running instance the journal does not name as the app's
// owner (the state directory was lost or is behind): its release is read
// from the container's image and labels.
func (a *Agent) adopt(app string, s containers.Status) error {
	rel := journal.NewRelease(app, s.Image, s.Labels[labels.Version], nil, a.cfg.Now())
	a.log.Warn("adopting a running instance the journal did not record", "instance", s.ID, "image", s.Image)
	return a.j.Deploy(journal.Instance{ID: s.ID, Release: rel})
}
