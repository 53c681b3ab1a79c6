package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skyswap/skyswap/agent/atomicfile"
)

// maxManifest is the largest manifest the registry takes: real ones are a
// few KiB.
const maxManifest = 4 << 20

// record is one line of manifests.log.
type record struct {
	Op     string `json:"op"` // "put" or "delete"
	Repo   string `json:"repo"`
	Ref    string `json:"ref"`              // tag or digest, as in the request's path
	Type   string `json:"type,omitempty"`   // put: the Content-Type
	Digest string `json:"digest,omitempty"` // put: sha256:<hex> of the body
}

// store keeps manifests on disk: bodies by digest and the log of
// operations.
type store struct {
	dir string // DataDir/manifests

	mu  sync.Mutex
	log *os.File
}

func openStore(dataDir string) (*store, error) {
	s := &store{dir: filepath.Join(dataDir, "manifests")}
	if err := os.MkdirAll(filepath.Join(s.dir, "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("registry: data directory: %w (give a directory this user can write)", err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "manifests.log"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: manifest log: %w", err)
	}
	s.log = f
	return s, nil
}

func (s *store) bodyPath(digest string) string {
	return filepath.Join(s.dir, "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// replay applies the log to reg in order and returns how many manifests
// it put. A line it cannot apply (a torn last line after a crash, a body
// gone missing) is logged and skipped: the rest of the registry serves.
func (s *store) replay(ctx context.Context, reg http.Handler, log *slog.Logger) (int, error) {
	if _, err := s.log.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("registry: manifest log: %w", err)
	}
	n := 0
	sc := bufio.NewScanner(s.log)
	for line := 1; sc.Scan(); line++ {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			log.Warn("manifest log: unreadable line skipped", "part", "registry", "line", line, "err", err)
			continue
		}
		if err := s.apply(ctx, reg, rec); err != nil {
			log.Warn("manifest log: line not replayed", "part", "registry", "line", line, "repo", rec.Repo, "ref", rec.Ref, "err", err)
			continue
		}
		if rec.Op == "put" {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("registry: read manifest log: %w", err)
	}
	return n, nil
}

// apply replays one record through the registry's own API.
func (s *store) apply(ctx context.Context, reg http.Handler, rec record) error {
	path := "/v2/" + rec.Repo + "/manifests/" + rec.Ref
	var req *http.Request
	switch rec.Op {
	case "put":
		body, err := os.ReadFile(s.bodyPath(rec.Digest))
		if err != nil {
			return err
		}
		if got := digestOf(body); got != rec.Digest {
			return fmt.Errorf("body has digest %s, the log says %s", got, rec.Digest)
		}
		req = httptest.NewRequestWithContext(ctx, http.MethodPut, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", rec.Type)
	case "delete":
		req = httptest.NewRequestWithContext(ctx, http.MethodDelete, path, nil)
	default:
		return fmt.Errorf("unknown op %q", rec.Op)
	}
	w := httptest.NewRecorder()
	reg.ServeHTTP(w, req)
	if w.Code >= 300 {
		return fmt.Errorf("%s %s: %d %s", req.Method, path, w.Code, strings.TrimSpace(w.Body.String()))
	}
	return nil
}

// add records rec durably: the body first (for a put), then the log line.
func (s *store) add(rec record, body []byte) error {
	if rec.Op == "put" {
		if err := atomicfile.WriteFile(s.bodyPath(rec.Digest), body, 0o644); err != nil {
			return err
		}
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.log.Write(append(line, '\n')); err != nil {
		return err
	}
	return s.log.Sync()
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// recorder passes writes to the registry and records the manifest PUTs
// and DELETEs it accepted.
type recorder struct {
	next  http.Handler
	store *store
	log   *slog.Logger
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	repo, ref, ok := manifestPath(req.URL.Path)
	if !ok || (req.Method != http.MethodPut && req.Method != http.MethodDelete) {
		h.next.ServeHTTP(w, req)
		return
	}
	rec := record{Op: "delete", Repo: repo, Ref: ref}
	var body []byte
	if req.Method == http.MethodPut {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, req.Body, maxManifest))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID", fmt.Sprintf("manifest unreadable or larger than %d bytes: %v", maxManifest, err))
			return
		}
		rec = record{Op: "put", Repo: repo, Ref: ref, Type: req.Header.Get("Content-Type"), Digest: digestOf(body)}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	sw := &statusWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, req)
	if sw.status >= 300 {
		return
	}
	if err := h.store.add(rec, body); err != nil {
		// Served from memory now, lost at the next restart: say so.
		h.log.Error("manifest not saved: it will be gone after a restart of the ground; push it again", "part", "registry",
			"repo", repo, "ref", ref, "err", err)
	}
}

// manifestPath splits /v2/<repo>/manifests/<ref>.
func manifestPath(p string) (repo, ref string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/manifests/")
	if i <= 0 {
		return "", "", false
	}
	repo, ref = rest[:i], rest[i+len("/manifests/"):]
	if ref == "" || strings.Contains(ref, "/") {
		return "", "", false
	}
	return repo, ref, true
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}
