package registry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/controller/registry"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/images/labels"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, cfg registry.Config) *registry.Registry {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	r, err := registry.Start(ctxFor(t, time.Minute), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func push(t *testing.T, host, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref, err := name.NewTag(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d.String()
}

func head(t *testing.T, host, repoTag string) (string, error) {
	t.Helper()
	ref, err := name.NewTag(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// TestRestart pushes two tags, moves one and deletes nothing; a registry
// started again on the same directory serves the same tags, digests and
// layers.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	r := start(t, registry.Config{DataDir: dir})
	idx1, _ := random.Index(512, 2, 2)
	idx2, _ := random.Index(512, 2, 2)
	d1 := push(t, r.Host(), "flight:v1", idx1)
	push(t, r.Host(), "flight:v2", idx1)
	d2 := push(t, r.Host(), "flight:v2", idx2) // the tag moves
	r.Close()
	// A crash mid-write leaves a torn last line: it is skipped.
	f, err := os.OpenFile(filepath.Join(dir, "manifests.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"put","repo":"flight","ref":"v3","ty`)
	f.Close()

	r2 := start(t, registry.Config{DataDir: dir})
	for tag, want := range map[string]string{"flight:v1": d1, "flight:v2": d2} {
		got, err := head(t, r2.Host(), tag)
		if err != nil || got != want {
			t.Errorf("%s after the restart: %s, %v; want %s", tag, got, err, want)
		}
	}
	if st := r2.Stats(); st.Manifests < 4 { // at least the two images and the index of v1, and v2's index
		t.Errorf("replayed %d manifest PUTs", st.Manifests)
	}
	ref, _ := name.ParseReference(r2.Host()+"/flight@"+d2, name.Insecure)
	pulled, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := pulled.IndexManifest()
	img, err := pulled.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer after the restart: %v", err)
		}
		rc.Close()
	}
	if st := r2.Stats(); st.BlobBytes == 0 || st.ManifestBytes == 0 {
		t.Errorf("Stats after pulls: %+v", st)
	}
}

func TestTags(t *testing.T) {
	r := start(t, registry.Config{})
	idx, _ := random.Index(64, 1, 1)
	push(t, r.Host(), "flight:v1", idx)
	push(t, r.Host(), "flight:v2", idx)
	repo, _ := name.NewRepository(r.Host()+"/flight", name.Insecure)
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tags) != "[v1 v2]" {
		t.Errorf("tags %v", tags)
	}
	cat, err := remote.Catalog(context.Background(), repo.Registry)
	if err != nil || fmt.Sprint(cat) != "[flight]" {
		t.Errorf("catalog %v, %v", cat, err)
	}
}

func TestBadConfig(t *testing.T) {
	r := start(t, registry.Config{})
	if r2, err := registry.Start(ctxFor(t, time.Minute), registry.Config{Addr: r.Host()}); err == nil {
		r2.Close()
		t.Fatal("a second registry on the same port started")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if r2, err := registry.Start(ctxFor(t, time.Minute), registry.Config{Addr: "127.0.0.1:0", DataDir: file}); err == nil {
		r2.Close()
		t.Fatal("a registry on a file as DataDir started")
	}
}

// TestContainerdPull pulls a flight image from the embedded registry with
// the drone's own containerd adapter, after a restart of the registry.
func TestContainerdPull(t *testing.T) {
	if os.Geteuid() != 0 {
		containerstest.SkipOrFail(t, "pulling through containerd needs root")
	}
	ctx := ctxFor(t, 2*time.Minute)
	rt, err := containers.Open(ctx, containers.Config{Namespace: "skyswap-test-registry", LogDir: t.TempDir()})
	if err != nil {
		containerstest.SkipOrFail(t, "%v", err)
	}
	defer rt.Close()
	dir := t.TempDir()
	r := start(t, registry.Config{DataDir: dir})
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	// A binary of its own, so no layer of it is in containerd already
	// and the pull must fetch it.
	bin := fmt.Appendf(nil, "not a real flight binary %d", time.Now().UnixNano())
	idx, err := build.Flight(ctx, build.Config{Version: "v1", Platforms: []v1.Platform{platform},
		Build: func(_ context.Context, tg build.Target) error { return os.WriteFile(tg.Out, bin, 0o755) }})
	if err != nil {
		t.Fatal(err)
	}
	digest := push(t, r.Host(), "flight:v1", idx)
	r.Close()
	r = start(t, registry.Config{Addr: r.Host(), DataDir: dir})

	rt2, err := containers.Open(ctx, containers.Config{Namespace: "skyswap-test-registry", LogDir: t.TempDir(), PlainHTTP: []string{r.Host()}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	ref := r.Host() + "/flight:v1@" + digest
	rt2.RemoveImage(ctx, ref)
	t.Cleanup(func() { rt2.RemoveImage(context.Background(), ref) })
	img, err := rt2.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatalf("containerd pull from the embedded registry: %v", err)
	}
	if img.Labels[labels.App] != build.AppName || img.Fetched == 0 {
		t.Errorf("pulled %+v", img)
	}
	if st := r.Stats(); st.BlobBytes < img.Fetched/2 {
		t.Errorf("registry served %d blob bytes, containerd fetched %d", st.BlobBytes, img.Fetched)
	}
}
