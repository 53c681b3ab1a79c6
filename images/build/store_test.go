package build

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/skyswap/skyswap/images/labels"
)

// uploads wraps a registry and records blob uploads: each upload session's
// body bytes, attributed at commit to the digest in PUT ...?digest=.
type uploads struct {
	next http.Handler

	mu       sync.Mutex
	requests int              // blob upload POSTs, PATCHes and PUTs
	session  map[string]int64 // upload path -> body bytes so far
	blobs    map[string]int64 // committed digest -> body bytes uploaded
}

func newUploads(next http.Handler) *uploads {
	return &uploads{next: next, session: map[string]int64{}, blobs: map[string]int64{}}
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

func (u *uploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/blobs/uploads/") || r.Method == http.MethodGet || r.Method == http.MethodHead {
		u.next.ServeHTTP(w, r)
		return
	}
	body := &countingReader{r: r.Body}
	r.Body = body
	u.next.ServeHTTP(w, r)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.requests++
	u.session[r.URL.Path] += body.n
	if d := r.URL.Query().Get("digest"); d != "" {
		u.blobs[d] += u.session[r.URL.Path]
		delete(u.session, r.URL.Path)
	}
}

// take returns what was uploaded since the last take and resets.
func (u *uploads) take() (requests int, blobs map[string]int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	requests, blobs = u.requests, u.blobs
	u.requests, u.blobs = 0, map[string]int64{}
	return requests, blobs
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func TestPushAndPull(t *testing.T) {
	up := newUploads(NewRegistry())
	srv := httptest.NewServer(up)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	versions := map[string]v1.ImageIndex{"v1": stubbed(t, Config{Version: "v1"}), "v2": stubbed(t, Config{Version: "v2"})}
	for _, v := range []string{"v1", "v2"} {
		idx := versions[v]
		ref := host + "/flight:" + v
		d, err := Push(ctx, idx, ref, PushConfig{})
		if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if d != digest(t, idx) {
			t.Fatalf("Push returned %s, index is %s", d, digest(t, idx))
		}
		requests, blobs := up.take()
		t.Logf("push %s: %d blob upload requests, %d blobs, %d bytes", v, requests, len(blobs), sum(blobs))

		// Pull back by digest: the same index, images and layers.
		pinned := host + "/flight@" + d.String()
		r, err := ParseReference(pinned, false)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Index(r, remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("pull %s: %v", pinned, err)
		}
		want, err := Summarize(idx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Summarize(pulled)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("pulled %s:\n%+v\nwant\n%+v", pinned, got, want)
		}
		img, err := Image(pulled, v1.Platform{OS: "linux", Architecture: "arm64"})
		if err != nil {
			t.Fatal(err)
		}
		ls, err := Labels(img)
		if err != nil || ls[labels.Version] != v {
			t.Fatalf("pulled labels %v, %v; want version %s", ls, err, v)
		}

		// What was uploaded: everything for v1; for v2 only what v1 lacks.
		wantBlobs := map[string]int64{}
		for _, p := range want.Platforms {
			m, err := pulled.Image(mustHash(t, p.Manifest))
			if err != nil {
				t.Fatal(err)
			}
			mf, err := m.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			wantBlobs[mf.Config.Digest.String()] = mf.Config.Size
			for i, l := range p.Layers {
				if v == "v1" || i == 1 {
					wantBlobs[l.Digest] = l.Size
				}
			}
		}
		if fmt.Sprint(blobs) != fmt.Sprint(wantBlobs) {
			t.Errorf("push %s uploaded %v\nwant %v", v, blobs, wantBlobs)
		}
		if v == "v2" {
			var changed, configs int64
			for _, p := range DefaultPlatforms() {
				d, err := LayerDiff(versions["v1"], versions["v2"], p)
				if err != nil {
					t.Fatal(err)
				}
				changed += d.AddedBytes()
				t.Logf("  %s: changed layer %s %d bytes; base %s %d bytes not uploaded", p, d.Added[0].Digest[:19], d.Added[0].Size, d.Shared[0].Digest[:19], d.Shared[0].Size)
			}
			configs = sum(blobs) - changed
			t.Logf("push v2: %d bytes uploaded = %d bytes of changed layers + %d bytes of configs", sum(blobs), changed, configs)
			if configs < 0 || configs > 4096 {
				t.Errorf("push v2 uploaded %d bytes beyond the changed layers (%d)", configs, changed)
			}
		}
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		ref      string
		insecure bool
		scheme   string
		err      string
	}{
		{ref: "127.0.0.1:5000/flight:v1", scheme: "http"},
		{ref: "localhost:5000/flight:v1", scheme: "http"},
		{ref: "[::1]:5000/flight:v1", scheme: "http"},
		{ref: "registry.example.com/flight:v1", scheme: "https"},
		{ref: "registry.example.com:443/flight:v1", insecure: true, scheme: "http"},
		{ref: "flight v1", err: `image reference "flight v1"`},
		{ref: "127.0.0.1:5000/Flight:v1", err: "want host[:port]/repo:tag"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			r, err := ParseReference(tt.ref, tt.insecure)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Context().Scheme(); got != tt.scheme {
				t.Fatalf("scheme %s, want %s", got, tt.scheme)
			}
		})
	}
}

func TestPushUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	_, err := Push(context.Background(), stubbed(t, Config{Version: "v1"}), host+"/flight:v1", PushConfig{})
	if err == nil || !strings.Contains(err.Error(), "push "+host+"/flight:v1") {
		t.Fatalf("err = %v, want a push error naming the reference", err)
	}
}

func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	v1i, v2i := stubbed(t, Config{Version: "v1"}), stubbed(t, Config{Version: "v2"})
	for _, w := range []struct {
		tag string
		idx v1.ImageIndex
	}{{"v1", v1i}, {"v2", v2i}, {"v1", v1i}} { // v1 twice: replaced, not listed twice
		if err := WriteLayout(dir, w.tag, w.idx); err != nil {
			t.Fatal(err)
		}
	}
	for tag, idx := range map[string]v1.ImageIndex{"v1": v1i, "v2": v2i} {
		got, err := ReadLayout(dir, tag)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Summarize(got)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Summarize(idx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("layout %s:\n%+v\nwant\n%+v", tag, a, b)
		}
		// The binary reads back intact (layout layers verify their digest).
		img, err := Image(got, v1.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if l := string(listing(t, ls[1])); !strings.HasSuffix(l, " flight\n") {
			t.Errorf("layout %s app layer: %s", tag, l)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), refName); n != 2 {
		t.Errorf("index.json names %d indexes, want 2 (v1 and v2):\n%s", n, raw)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	// 1 shared base layer, 2x2 app layers, 4 configs, 4 manifests, 2 indexes.
	if len(blobs) != 15 {
		t.Errorf("%d blobs, want 15 (the base layer shared by every image)", len(blobs))
	}
	if _, err := ReadLayout(dir, "v3"); err == nil || !strings.Contains(err.Error(), `no index tagged "v3"`) {
		t.Errorf("ReadLayout v3: err = %v", err)
	}
}

func TestLayoutBadDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	idx := stubbed(t, Config{Version: "v1", Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
	tests := []struct {
		name, dir, tag, want string
	}{
		{"not a layout", dir, "v1", "not an OCI image layout"},
		{"bad tag", filepath.Join(dir, "new"), "v 1", `layout tag "v 1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteLayout(tt.dir, tt.tag, idx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
