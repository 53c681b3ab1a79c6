// Package registry is the ground station's embedded OCI registry for the
// fleet's images: go-containerregistry's registry (pkg/registry) with its
// blobs on disk and its manifests kept on disk too, so that images pushed
// once (make images REGISTRY=127.0.0.1:5000) outlive a restart of the
// ground. Drones pull from it through containerd over plain HTTP
// (AGENT_PLAIN_HTTP).
//
// It is the default, not the only choice: a ground station pointed at a
// real registry by host starts none.
//
// # Who may do what
//
// Anyone who reaches the listener may pull; only clients on this machine
// (loopback, or the address they connected to) may push or delete: a
// drone needs no more, and a tag that anyone on the field's network could
// move would let them choose what the operator's next push sends. Images
// are pinned by digest and commands are signed, so a drone never runs what
// the ground did not sign.
//
// Image references name the registry by Host, the listener's address:
// listen on the address the drones reach (a listener on every interface is
// named 127.0.0.1, which a drone cannot pull from).
//
// # On disk
//
//	DataDir/blobs/sha256/<hex>        every blob (layers, configs)
//	DataDir/manifests/sha256/<hex>    every manifest and index, by digest
//	DataDir/manifests.log             one JSON line per manifest PUT or DELETE, in order
//
// go-containerregistry's registry keeps manifests in memory; Start replays
// the log into it, in order, so an index comes after the manifests it
// names, as when it was pushed.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// DefaultAddr is the usual registry port, on loopback.
const DefaultAddr = "127.0.0.1:5000"

// Config configures Start. Every zero value means the default documented
// on the field.
type Config struct {
	// Addr is the listener, host:port; "" means DefaultAddr
	// (127.0.0.1:5000). Port 0 picks a free port: Host tells which.
	Addr string
	// DataDir holds the blobs and manifests; "" means a new temporary
	// directory, removed by Close.
	DataDir string
	// Log receives the registry's warnings; nil discards them.
	Log *slog.Logger
}

// Stats are the registry's counters since Start.
type Stats struct {
	BlobBytes     int64 `json:"blob_bytes"`     // served by GET: layers and configs
	ManifestBytes int64 `json:"manifest_bytes"` // served by GET: manifests and indexes
	Manifests     int   `json:"manifests"`      // manifest PUTs replayed at Start
}

// Registry is a running registry.
type Registry struct {
	host    string
	srv     *http.Server
	tempDir string
	log     *slog.Logger

	blobs, manifests atomic.Int64
	replayed         int
}

// Start opens DataDir, replays its manifests and serves the registry.
func Start(ctx context.Context, cfg Config) (*Registry, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	r := &Registry{log: cfg.Log}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "skyswap-registry-")
		if err != nil {
			return nil, fmt.Errorf("registry: data directory: %w", err)
		}
		dir, r.tempDir = d, d
	}
	h, err := r.handler(ctx, dir)
	if err != nil {
		r.cleanup()
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		r.cleanup()
		return nil, fmt.Errorf("registry: listen on %s: %w (another registry there? give a free host:port)", addr, err)
	}
	r.host = l.Addr().String()
	if tcp, ok := l.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		r.host = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	r.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := r.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("registry stopped serving", "part", "registry", "err", err)
		}
	}()
	return r, nil
}

// handler is the registry over dir: blobs on disk, manifests replayed from
// the log and recorded as they come, writes from loopback only, GETs
// counted.
func (r *Registry) handler(ctx context.Context, dir string) (http.Handler, error) {
	blobs := filepath.Join(dir, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, fmt.Errorf("registry: data directory: %w (give a directory this user can write)", err)
	}
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)), ggcr.WithBlobHandler(ggcr.NewDiskBlobHandler(blobs)))
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	n, err := st.replay(ctx, reg, r.log)
	if err != nil {
		return nil, err
	}
	r.replayed = n
	rec := &recorder{next: reg, store: st, log: r.log}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodGet || req.Method == http.MethodHead:
			n := &r.manifests
			if strings.Contains(req.URL.Path, "/blobs/") {
				n = &r.blobs
			}
			reg.ServeHTTP(counting{w, n}, req)
		case !fromThisMachine(req):
			writeError(w, http.StatusForbidden, "DENIED", "this registry takes pushes from the ground station's own machine only: push from there (make images REGISTRY=...)")
		default:
			rec.ServeHTTP(w, req)
		}
	}), nil
}

// Host is the registry as image references name it: 127.0.0.1:<port> for
// a loopback or any-address listener.
func (r *Registry) Host() string { return r.host }

// Stats returns the registry's counters.
func (r *Registry) Stats() Stats {
	return Stats{BlobBytes: r.blobs.Load(), ManifestBytes: r.manifests.Load(), Manifests: r.replayed}
}

// Close stops serving. What is in DataDir stays.
func (r *Registry) Close() error {
	err := r.srv.Close()
	r.cleanup()
	return err
}

func (r *Registry) cleanup() {
	if r.tempDir != "" {
		os.RemoveAll(r.tempDir)
	}
}

// fromThisMachine reports whether req comes from loopback, or from the
// address it connected to (this machine, by one of its addresses).
func fromThisMachine(req *http.Request) bool {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	tcp, isTCP := local.(*net.TCPAddr)
	return ok && isTCP && tcp.IP.Equal(ip)
}

// writeError answers in the registry API's error format.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

type counting struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}
