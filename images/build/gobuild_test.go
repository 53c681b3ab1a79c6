package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestFlightGoBuild is the one test with the real compiler: two builds of
// v1 (separate work dirs) must give the same index digest, v2 must share
// the base layer, and the host's binary must report the stamped version.
func TestFlightGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips cross-compiling the flight app (three builds for two platforms)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	build := func(version string) v1.ImageIndex {
		t.Helper()
		start := time.Now()
		idx, err := Flight(t.Context(), Config{Version: version, WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("built %s in %v: index %s", version, time.Since(start).Round(time.Millisecond), digest(t, idx))
		return idx
	}
	a, b, v2 := build("v1"), build("v1"), build("v2")
	if digest(t, a) != digest(t, b) {
		t.Fatalf("two builds of v1 differ: %s and %s", digest(t, a), digest(t, b))
	}
	for _, p := range DefaultPlatforms() {
		d, err := LayerDiff(a, v2, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Shared) != 1 || len(d.Added) != 1 || d.Shared[0] != layerStat(t, v2, p, 0) {
			t.Fatalf("%s v1 -> v2: %+v, want the base layer shared and only the app layer new", p, d)
		}
		t.Logf("%s: base %s %d B (shared), v1 app %d B, v2 app %s %d B (the only layer to fetch)",
			p, d.Shared[0].Digest[:19], d.Shared[0].Size, layerStat(t, a, p, 1).Size, d.Added[0].Digest[:19], d.Added[0].Size)
	}

	host := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOOS != "linux" || (host.Architecture != "amd64" && host.Architecture != "arm64") {
		t.Logf("not running the binary: host %s is not an image platform", host)
		return
	}
	bin := filepath.Join(t.TempDir(), "flight")
	if err := os.WriteFile(bin, appBinary(t, layers(t, v2, host)[1]), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "flight v2" {
		t.Fatalf("%s version: %q, %v; want \"flight v2\"", bin, out, err)
	}
}

// TestFlightGoBuildFault: the build tags and stamps reach the compiler: a
// skyswap_faults build stamped with the crash fault exits 1 at start,
// with no FLIGHT_FAULT in its environment.
func TestFlightGoBuildFault(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips compiling the flight app")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	host := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOOS != "linux" || (host.Architecture != "amd64" && host.Architecture != "arm64") {
		t.Skipf("host %s is not an image platform", host)
	}
	idx, err := Flight(t.Context(), Config{Version: "v1-crash", Platforms: []v1.Platform{host},
		Tags: []string{"skyswap_faults"}, Stamps: map[string]string{"fault": "crash"}})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "flight")
	if err := os.WriteFile(bin, appBinary(t, layers(t, idx, host)[1]), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "version")
	cmd.Env = []string{} // no FLIGHT_FAULT: the stamp alone
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "fault crash") {
		t.Fatalf("%s version: %q, %v; want exit 1 with \"fault crash\"", bin, out, err)
	}
}

func layerStat(t *testing.T, idx v1.ImageIndex, p v1.Platform, i int) BlobStats {
	t.Helper()
	l := layers(t, idx, p)[i]
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	return BlobStats{Digest: digest(t, l).String(), Size: size}
}

// appBinary returns /flight from an app layer.
func appBinary(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no flight in the app layer: %v", err)
		}
		if h.Name == "flight" {
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				t.Fatal(err)
			}
			return b.Bytes()
		}
	}
}
