// Package buildtest serves flight releases from a registry on loopback for
// tests that pull real images (the agent's and its container runtime's).
package buildtest

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skyswap/skyswap/images/build"
)

// Releases builds flight images of versions for this machine's platform,
// pushes them to an in-process registry on 127.0.0.1 (plain HTTP, closed at
// the test's end) and returns the registry's host:port and each version's
// reference pinned by digest, with the built indexes. moduleDir is a
// directory inside the skyswap module (the go build runs there).
func Releases(t testing.TB, moduleDir string, versions ...string) (host string, refs map[string]string, idxs []v1.ImageIndex) {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host = strings.TrimPrefix(reg.URL, "http://")
	refs = map[string]string{}
	ctx := context.Background()
	for _, v := range versions {
		idx, err := build.Flight(ctx, build.Config{Version: v, Dir: moduleDir,
			Platforms: []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := build.Push(ctx, idx, host+"/flight:"+v, build.PushConfig{})
		if err != nil {
			t.Fatal(err)
		}
		refs[v] = host + "/flight:" + v + "@" + d.String()
		idxs = append(idxs, idx)
	}
	return host, refs, idxs
}
