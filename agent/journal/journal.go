// Package journal is the drone agent's durable record: which release of
// each app is committed (and the one before, kept for rollback), which
// instance owns the hardware, and the update in progress with its phase.
// Every change is one atomic file replace, so an agent killed at any instant
// restarts from a consistent record; Recover then decides what to keep.
package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/atomicfile"
)

// Release is an immutable deployment unit: an image pinned by digest plus
// the configuration it runs with, identified by a hash of both.
type Release struct {
	ID      string    `json:"id"`
	App     string    `json:"app"`
	Image   string    `json:"image"` // reference pinned by digest
	Version string    `json:"version,omitempty"`
	Env     []string  `json:"env,omitempty"` // sorted
	Created time.Time `json:"created"`
}

// NewRelease makes the release of image with env for app. Equal inputs
// give the same ID.
func NewRelease(app, image, version string, env []string, now time.Time) Release {
	env = slices.Clone(env)
	slices.Sort(env)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", app, image, strings.Join(env, "\x00"))
	return Release{ID: app + "-" + hex.EncodeToString(h.Sum(nil))[:12], App: app, Image: image,
		Version: version, Env: env, Created: now.UTC()}
}

// Instance is one running copy of a release.
type Instance struct {
	ID      string  `json:"id"` // container id, also the hand-over instance name
	Release Release `json:"release"`
}

// Update is an update in progress.
type Update struct {
	Command string    `json:"command"` // the command's id
	App     string    `json:"app"`
	Phase   string    `json:"phase"` // the coordinator's latest phase
	From    Instance  `json:"from"`
	To      Instance  `json:"to"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// State is the whole record.
type State struct {
	Committed map[string]Release `json:"committed"` // app -> committed release
	Previous  map[string]Release `json:"previous"`  // app -> the release before it, kept for rollback
	Owner     map[string]string  `json:"owner"`     // app -> instance that owns the hardware
	Update    *Update            `json:"update,omitempty"`
}

// ErrBusy is returned by Begin while another update is in progress.
var ErrBusy = errors.New("journal: an update is already in progress")

// Journal is the record in a file. It is safe for concurrent use.
type Journal struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
	st   State
}

// Open loads the journal in dir (created if absent).
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: state dir %s: %w", dir, err)
	}
	j := &Journal{path: filepath.Join(dir, "journal.json"), now: time.Now}
	atomicfile.RemoveTemps(j.path)
	data, err := os.ReadFile(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("journal: %w", err)
	default:
		if err := json.Unmarshal(data, &j.st); err != nil {
			return nil, fmt.Errorf("journal: %s is corrupt (%v): move it aside to start from an empty record", j.path, err)
		}
	}
	j.st = j.st.normalize()
	return j, nil
}

func (s State) normalize() State {
	if s.Committed == nil {
		s.Committed = map[string]Release{}
	}
	if s.Previous == nil {
		s.Previous = map[string]Release{}
	}
	if s.Owner == nil {
		s.Owner = map[string]string{}
	}
	return s
}

// State returns a copy of the record.
func (j *Journal) State() State {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.st.clone()
}

func (s State) clone() State {
	c := State{Committed: map[string]Release{}, Previous: map[string]Release{}, Owner: map[string]string{}}
	for k, v := range s.Committed {
		c.Committed[k] = v
	}
	for k, v := range s.Previous {
		c.Previous[k] = v
	}
	for k, v := range s.Owner {
		c.Owner[k] = v
	}
	if s.Update != nil {
		u := *s.Update
		c.Update = &u
	}
	return c
}

// change applies f to a copy and persists it; the record changes only if
// the write succeeds.
func (j *Journal) change(f func(*State) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	next := j.st.clone()
	if err := f(&next); err != nil {
		return err
	}
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: encode: %w", err)
	}
	if err := atomicfile.WriteFile(j.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("journal: write %s: %w", j.path, err)
	}
	j.st = next
	return nil
}

// Deploy records the first release of an app, started cold as owner.
func (j *Journal) Deploy(owner Instance) error {
	return j.change(func(s *State) error {
		app := owner.Release.App
		if s.Update != nil {
			return ErrBusy
		}
		if cur, ok := s.Committed[app]; ok {
			s.Previous[app] = cur
		}
		s.Committed[app], s.Owner[app] = owner.Release, owner.ID
		return nil
	})
}

// Begin records the start of an update.
func (j *Journal) Begin(u Update) error {
	return j.change(func(s *State) error {
		if s.Update != nil {
			return fmt.Errorf("%w (command %s, phase %s)", ErrBusy, s.Update.Command, s.Update.Phase)
		}
		u.Started, u.Updated = j.now().UTC(), j.now().UTC()
		s.Update = &u
		return nil
	})
}

// Phase records the update's latest phase.
func (j *Journal) Phase(phase string) error {
	return j.change(func(s *State) error {
		if s.Update == nil {
			return errors.New("journal: no update in progress")
		}
		s.Update.Phase, s.Update.Updated = phase, j.now().UTC()
		return nil
	})
}

// Commit ends the update: its target release is committed and its instance
// owns the hardware; the release before is kept as previous. It returns the
// release that stopped being previous (its image may go), if any.
func (j *Journal) Commit() (dropped *Release, err error) {
	err = j.change(func(s *State) error {
		u := s.Update
		if u == nil {
			return errors.New("journal: no update in progress")
		}
		if cur, ok := s.Committed[u.App]; ok && cur.ID != u.To.Release.ID {
			if prev, ok := s.Previous[u.App]; ok && prev.ID != u.To.Release.ID && prev.Image != cur.Image && prev.Image != u.To.Release.Image {
				dropped = &prev
			}
			s.Previous[u.App] = cur
		}
		s.Committed[u.App], s.Owner[u.App] = u.To.Release, u.To.ID
		s.Update = nil
		return nil
	})
	if err != nil {
		dropped = nil
	}
	return dropped, err
}

// End ends the update without committing (aborted, reverted, refused):
// the old owner keeps the hardware.
func (j *Journal) End() error {
	return j.change(func(s *State) error {
		s.Update = nil
		return nil
	})
}

// Decision is what an agent restarting with this record does.
type Decision struct {
	Keep    string   // the instance that keeps (or gets) the hardware; "" = none flies
	Remove  []string // instances to stop and remove
	Outcome string   // what to report for an interrupted update ("" = none was)
	// Commit is set when the interrupted update's candidate is the one
	// flying: the record should commit it.
	Commit bool
	// Adopt is set when Keep is not the record's owner (the record was
	// lost or is behind): the record should take Keep as the app's owner.
	Adopt bool
	// Unknown lists the running instances left alone because none can be
	// told to fly (no frames, no owner on record, more than one running);
	// the agent must not deploy until a person settles it.
	Unknown []string
}

// Recover decides, after a restart, which of the app's running instances
// keeps the hardware. flying is the instance whose state frames carry the
// highest epoch right now ("" if none are seen). The rule is to keep what
// flies and remove the rest: interrupting a hand-over never drops the
// drone, and an update whose candidate already flies is committed.
func Recover(st State, app string, running []string, flying string) Decision {
	var d Decision
	keep := flying
	if keep == "" || !slices.Contains(running, keep) {
		keep = ""
		if o := st.Owner[app]; slices.Contains(running, o) {
			keep = o
		} else if len(running) == 1 {
			keep = running[0]
		}
	}
	if keep == "" && len(running) > 1 {
		// Removing all of them could drop a flying drone; keeping one at
		// random could keep the wrong one.
		d.Unknown = running
		d.Outcome = "cannot tell which of " + strings.Join(running, ", ") + " drives the motors (no state frames, none on record): left them all running"
		return d
	}
	d.Keep = keep
	d.Adopt = keep != "" && keep != st.Owner[app] && (st.Update == nil || keep != st.Update.To.ID)
	for _, id := range running {
		if id != keep {
			d.Remove = append(d.Remove, id)
		}
	}
	if u := st.Update; u != nil && u.App == app {
		switch keep {
		case u.To.ID:
			d.Outcome, d.Commit = "committed on recovery: the candidate was flying when the agent restarted (phase "+u.Phase+")", true
		case u.From.ID:
			d.Outcome = "aborted on recovery: the agent restarted in phase " + u.Phase + "; the old owner keeps flying"
		default:
			d.Outcome = "interrupted: the agent restarted in phase " + u.Phase + " and neither instance is flying"
		}
	}
	return d
}
