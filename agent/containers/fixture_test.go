package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/images/build"
)

// The integration tests run against a real containerd daemon, as root, in
// the namespace testNamespace. Without root or a daemon they skip, unless
// CI is set: then they fail, since CI installs and starts containerd
// (scripts/dev-setup.sh containerd).

const testNamespace = "skyswap-test"

var (
	reg    *httptest.Server // in-process OCI registry, plain HTTP on loopback
	logDir string           // LogDir of every test Runtime

	probeOnce sync.Once
	probeBin  []byte
	probeErr  error
)

func TestMain(m *testing.M) {
	reg = httptest.NewServer(build.NewRegistry())
	var err error
	logDir, err = os.MkdirTemp("", "skyswap-containers-logs-")
	if err != nil {
		log.Fatal(err)
	}
	code := m.Run()
	reg.Close()
	os.RemoveAll(logDir)
	os.Exit(code)
}

func regHost() string { return strings.TrimPrefix(reg.URL, "http://") }

func testSocket() string {
	if s := os.Getenv("CONTAINERD_ADDRESS"); s != "" {
		return s
	}
	return DefaultSocket
}

// openTest opens a Runtime on the test namespace, or skips (fails in CI).
// plainHTTP are extra registry hosts (host:port) to reach over plain HTTP.
func openTest(t *testing.T, plainHTTP ...string) *Runtime {
	t.Helper()
	if os.Geteuid() != 0 {
		containerstest.SkipOrFail(t, "containerd tests need root (sudo go test ./agent/containers/)")
	}
	sock := testSocket()
	if _, err := os.Stat(sock); err != nil {
		containerstest.SkipOrFail(t, "no containerd socket at %s: run scripts/dev-setup.sh containerd as root", sock)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Open(ctx, Config{Socket: sock, Namespace: testNamespace, LogDir: logDir, PlainHTTP: append(plainHTTP, regHost())})
	if err != nil {
		containerstest.SkipOrFail(t, "%v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// removeAll clears the test namespace of containers and images.
func removeAll(t *testing.T, r *Runtime) {
	t.Helper()
	ctx := context.Background()
	cs, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := r.Remove(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := r.c.ImageService().List(r.ctx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range imgs {
		if err := r.c.ImageService().Delete(r.ctx(ctx), i.Name, images.SynchronousDelete()); err != nil {
			t.Fatal(err)
		}
	}
}

// probe is the test program, compiled statically for this host.
func probe(t *testing.T) []byte {
	t.Helper()
	probeOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		dir, err := os.MkdirTemp("", "skyswap-probe-")
		if err != nil {
			probeErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "probe")
		cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build probe: %v\n%s", err, b)
			return
		}
		probeBin, probeErr = os.ReadFile(out)
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probeBin
}

type v1Image = v1.Image

// otherArch is a platform that is not this host's.
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func nonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tarLayer(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		mode := int64(0o644)
		if n == "probe" {
			mode = 0o755
		}
		hdr := &tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(p)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage is an OCI image: a layer with the probe (base) and a small
// release layer, so that two releases share the base.
func testImage(t *testing.T, arch string, base, release v1.Layer, labels map[string]string) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: arch,
		Config: v1.Config{
			Entrypoint: []string{"/probe"},
			User:       "65532:65532",
			Env:        []string{"PATH=/", "PROBE_FROM_IMAGE=yes"},
			Labels:     labels,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, release)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pushIndex pushes an index of imgs (keyed by architecture) and returns
// the reference pinned by its digest.
func pushIndex(t *testing.T, repo string, imgs map[string]v1.Image) (string, v1.ImageIndex) {
	return pushIndexTo(t, regHost(), repo, imgs)
}

func pushIndexTo(t *testing.T, host, repo string, imgs map[string]v1.Image) (string, v1.ImageIndex) {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64", "riscv64"} {
		img, ok := imgs[arch]
		if !ok {
			continue
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	tag, err := name.NewTag(host+"/"+repo+":"+nonce(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return host + "/" + repo + "@" + d.String(), idx
}

// pushImage pushes a single-platform image and returns its pinned reference.
func pushImage(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(regHost()+"/"+repo+":"+nonce(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return regHost() + "/" + repo + "@" + d.String()
}

// release is a pushed multi-arch image of the probe.
type release struct {
	ref     string
	idx     v1.ImageIndex
	host    v1.Image // this host's image
	base    v1.Layer // shared by releases made with the same base
	changed v1.Layer // this release's own layer
}

// newBase is a probe layer unique to this run, so the first pull of a
// test fetches it whatever an earlier run left in containerd.
func newBase(t *testing.T) v1.Layer {
	return tarLayer(t, map[string][]byte{"probe": probe(t), "etc/probe-run": []byte(nonce())})
}

// pushRelease pushes a multi-arch (this host + otherArch) probe image.
func pushRelease(t *testing.T, base v1.Layer, version string) release {
	return pushReleaseTo(t, regHost(), base, version)
}

func pushReleaseTo(t *testing.T, host string, base v1.Layer, version string) release {
	t.Helper()
	labels := map[string]string{"org.skyswap.strategy": "handoff", "org.skyswap.version": version}
	changed := tarLayer(t, map[string][]byte{"etc/release": []byte(version + " " + nonce())})
	other := tarLayer(t, map[string][]byte{"probe": []byte("not for this host " + nonce())})
	img := testImage(t, runtime.GOARCH, base, changed, labels)
	ref, idx := pushIndexTo(t, host, "flight", map[string]v1.Image{
		runtime.GOARCH: img,
		otherArch():    testImage(t, otherArch(), other, changed, labels),
	})
	return release{ref: ref, idx: idx, host: img, base: base, changed: changed}
}

func blobSize(t *testing.T, f func() ([]byte, error)) int64 {
	t.Helper()
	p, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(p))
}

func layerSize(t *testing.T, l v1.Layer) int64 {
	t.Helper()
	n, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func layerDigest(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// metaSize is the size of the release's index, host manifest and config.
func (rl release) metaSize(t *testing.T) int64 {
	return blobSize(t, rl.idx.RawManifest) + blobSize(t, rl.host.RawManifest) + blobSize(t, rl.host.RawConfigFile)
}
