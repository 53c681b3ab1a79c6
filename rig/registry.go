package rig

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/images/build"
)

// Registry is an OCI registry on 127.0.0.1 (plain HTTP) that counts the
// bytes it serves, so a figure like "bytes pulled for v1 -> v2" is measured
// where the bytes leave, not where they arrive.
type Registry struct {
	Host      string // 127.0.0.1:<port>, as in image references
	srv       *http.Server
	blobs     atomic.Int64
	manifests atomic.Int64
}

// StartRegistry serves an empty in-memory registry on a free loopback port.
func StartRegistry() (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rig: registry: %w", err)
	}
	r := &Registry{Host: l.Addr().String()}
	reg := build.NewRegistry()
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			reg.ServeHTTP(w, req)
			return
		}
		n := &r.manifests
		if strings.Contains(req.URL.Path, "/blobs/") {
			n = &r.blobs
		}
		reg.ServeHTTP(countingWriter{w, n}, req)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := r.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("rig: registry: %v", err)
		}
	}()
	return r, nil
}

// Served returns the bytes served so far by GET: blobs (layers and image
// configs) and manifests (indexes and manifests).
func (r *Registry) Served() (blobs, manifests int64) { return r.blobs.Load(), r.manifests.Load() }

// Close stops the registry.
func (r *Registry) Close() error { return r.srv.Close() }

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}
