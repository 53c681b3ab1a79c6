// Package buildtest serves flight releases from a registry on loopback for
// tests that pull real images (the agent's and its container runtime's).
package buildtest

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skyswap/skyswap/images/build"
)

// Registry is an in-process OCI registry on 127.0.0.1 (plain HTTP, closed
// at the test's end) that tests push flight images to.
type Registry struct {
	// Host is the registry's host:port, as in image references (and in the
	// plain-HTTP list of a runtime that pulls from it).
	Host      string
	moduleDir string
}

// NewRegistry starts a registry. moduleDir is a directory inside the
// skyswap module: the go build of every Push runs there.
func NewRegistry(t testing.TB, moduleDir string) *Registry {
	t.Helper()
	srv := httptest.NewServer(build.NewRegistry())
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), moduleDir: moduleDir}
}

// runEpoch stamps every image this test process builds (unless its
// Config sets one): containerd shares content across namespaces, so
// images a machine pulled before (make demo, another test) would make a
// pull fetch nothing. Releases of one process still share their base
// layer, as releases of one build do.
var runEpoch = 1_000_000_000 + rand.Int64N(1_000_000_000)

// Push builds the flight image cfg describes and pushes it as
// flight:<Version>. An empty cfg.Dir is the registry's module directory;
// nil cfg.Platforms is this machine's platform only; a zero
// cfg.SourceDateEpoch is this process's own, so the images are new to
// containerd. It returns the
// reference pinned by the index digest, and the index.
func (r *Registry) Push(t testing.TB, cfg build.Config) (string, v1.ImageIndex) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = r.moduleDir
	}
	if cfg.Platforms == nil {
		cfg.Platforms = []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}
	}
	if cfg.SourceDateEpoch == 0 {
		cfg.SourceDateEpoch = runEpoch
	}
	ctx := context.Background()
	idx, err := build.Flight(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tag := r.Host + "/flight:" + cfg.Version
	d, err := build.Push(ctx, idx, tag, build.PushConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return tag + "@" + d.String(), idx
}

// Releases builds flight images of versions for this machine's platform,
// pushes them to a new Registry and returns the registry's host:port and
// each version's reference pinned by digest, with the built indexes.
// moduleDir is a directory inside the skyswap module (the go build runs
// there).
func Releases(t testing.TB, moduleDir string, versions ...string) (host string, refs map[string]string, idxs []v1.ImageIndex) {
	t.Helper()
	reg := NewRegistry(t, moduleDir)
	refs = map[string]string{}
	for _, v := range versions {
		ref, idx := reg.Push(t, build.Config{Version: v})
		refs[v] = ref
		idxs = append(idxs, idx)
	}
	return reg.Host, refs, idxs
}
