package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/skyswap/skyswap/agent/atomicfile"
)

// Seen remembers the ids of accepted commands until they expire, in a file,
// so that neither a QoS 1 redelivery nor a replayed message runs a command
// twice, across restarts too. It is safe for concurrent use; one process
// owns the file.
//
// The file is JSON, {"version":1,"ids":{"<id>":"<expires>",...}}, rewritten
// whole on every Mark through a temporary file in the same directory that is
// fsynced and renamed over it (then the directory is fsynced): a crash leaves
// the old list or the new one, never a mix. Expired ids are dropped on every
// write; an id needs remembering only until its command expires, because
// Verify refuses an expired command with no tolerance.
type Seen struct {
	// Now is the clock that decides expiry; nil means time.Now. Give it
	// the Verifier's clock, and set it before the first Check or Mark.
	Now func() time.Time

	path string
	mu   sync.Mutex
	ids  map[string]time.Time // id → expires
}

const seenVersion = 1

type seenFile struct {
	Version int               `json:"version"`
	IDs     map[string]string `json:"ids"`
}

// OpenSeen loads the list at path, or creates an empty one if there is no
// file (so a missing or read-only directory shows now, not at the first
// command). Expired ids are dropped at the first Mark, by Seen.Now. Temporary files a crash left beside it are removed.
// A file that cannot be read or parsed is an error: replay protection
// fails closed.
func OpenSeen(path string) (*Seen, error) {
	s := &Seen{path: path, ids: make(map[string]time.Time)}
	atomicfile.RemoveTemps(path)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := s.writeLocked(); err != nil { // nothing to prune yet
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("seen list: %w", err)
	default:
		if err := s.load(data); err != nil {
			return nil, fmt.Errorf("seen list %s is corrupt: %w; move it aside to start an empty one "+
				"(commands that have not expired yet could then run again)", path, err)
		}
	}
	return s, nil
}

func (s *Seen) load(data []byte) error {
	var f seenFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return err
	}
	if f.Version != seenVersion {
		return fmt.Errorf("version %d, want %d", f.Version, seenVersion)
	}
	for id, exp := range f.IDs {
		if !validName(id, false) {
			return fmt.Errorf("bad id %.100q", id)
		}
		t, err := parseTime("expires", exp)
		if err != nil || t.IsZero() {
			return fmt.Errorf("id %q: bad expiry %.100q", id, exp)
		}
		s.ids[id] = t
	}
	return nil
}

func (s *Seen) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Check returns an error wrapping ErrReplayed if a command with c's id was
// already marked. It changes nothing; Mark is the check that counts.
func (s *Seen) Check(c Command) error {
	if !validName(c.ID, false) {
		return fieldErr("id", "%.100q must be 1 to %d characters from [A-Za-z0-9._-]", c.ID, maxName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLocked(c.ID)
}

func (s *Seen) checkLocked(id string) error {
	if _, ok := s.ids[id]; ok {
		return fmt.Errorf("%w: command %q was already accepted (a QoS 1 redelivery or a replay): "+
			"ignore it; to run it again, sign a new command with a new id", ErrReplayed, id)
	}
	return nil
}

// Mark records c's id until c.Expires and writes the list to disk before
// it returns. If the id is already recorded it returns an error wrapping
// ErrReplayed and changes nothing, so of two concurrent Marks of one id
// exactly one succeeds. If the write fails the id is not recorded and the
// error is returned: do not act on the command then.
func (s *Seen) Mark(c Command) error {
	if !validName(c.ID, false) {
		return fieldErr("id", "%.100q must be 1 to %d characters from [A-Za-z0-9._-]", c.ID, maxName)
	}
	if err := checkTime("expires", c.Expires); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(c.ID); err != nil {
		return err
	}
	s.ids[c.ID] = c.Expires
	if err := s.writeLocked(); err != nil {
		delete(s.ids, c.ID)
		return err
	}
	return nil
}

// writeLocked drops expired ids and replaces the file atomically.
func (s *Seen) writeLocked() error {
	now := s.now()
	f := seenFile{Version: seenVersion, IDs: make(map[string]string, len(s.ids))}
	for id, exp := range s.ids {
		if !now.Before(exp) {
			delete(s.ids, id)
			continue
		}
		f.IDs[id] = exp.UTC().Format(TimeFormat)
	}
	data, err := json.Marshal(f) // map keys sorted: the file is deterministic
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("seen list: %w", err)
	}
	return nil
}
