package rollout

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyswap/skyswap/agent/atomicfile"
)

// store keeps each rollout's record in dir/<id>.json, every write one
// atomic replace (agent/atomicfile: temporary file, fsync, rename, fsync
// of the directory): a ground killed at any instant restarts from the
// record as it was before a write or after it.
type store struct{ dir string }

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rollout: records directory: %w (give a directory the ground can write)", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) path(id string) string { return filepath.Join(s.dir, id+".json") }

// write replaces rec's file.
func (s *store) write(rec *Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("rollout: encode %s: %w", rec.ID, err)
	}
	if err := atomicfile.WriteFile(s.path(rec.ID), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("rollout: write the record of %s: %w", rec.ID, err)
	}
	return nil
}

// load reads every record in the directory.
func (s *store) load() ([]*Record, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("rollout: records: %w", err)
	}
	var out []*Record
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, IDPrefix) || !strings.HasSuffix(name, ".json") {
			continue
		}
		path := filepath.Join(s.dir, name)
		atomicfile.RemoveTemps(path)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("rollout: %w", err)
		}
		rec := &Record{}
		if err := json.Unmarshal(b, rec); err != nil {
			return nil, fmt.Errorf("rollout: %s is corrupt (%v): move it aside to start the ground without it", path, err)
		}
		out = append(out, rec)
	}
	return out, nil
}
