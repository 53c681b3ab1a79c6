package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/skyswap/skyswap/images/labels"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// stubBuild stands in for go build: a deterministic 256 KiB "binary" that
// names its target, so app layers differ by version and platform like the
// real ones and cost no compile.
func stubBuild(_ context.Context, t Target) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "flight %s %s accepts %s\n", t.Platform, t.Version, t.Accepts)
	h := sha256.Sum256(b.Bytes())
	for b.Len() < 256<<10 {
		h = sha256.Sum256(h[:])
		b.Write(h[:])
	}
	b.Truncate(256 << 10)
	return os.WriteFile(t.Out, b.Bytes(), 0o755)
}

// stubbed builds cfg with stubBuild.
func stubbed(t *testing.T, cfg Config) v1.ImageIndex {
	t.Helper()
	cfg.Build = stubBuild
	idx, err := Flight(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Flight(%s): %v", cfg.Version, err)
	}
	return idx
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./images/build -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it after a deliberate change)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// listing renders a layer's tar the way the golden files record it.
func listing(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%c %05o %d:%d %s %7d %s", h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format(time.RFC3339), h.Size, h.Name)
		if len(data) > 0 && len(data) < 512 {
			fmt.Fprintf(&out, "\n\t%s", strings.ReplaceAll(strings.TrimSuffix(string(data), "\n"), "\n", "\n\t"))
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func layers(t *testing.T, idx v1.ImageIndex, p v1.Platform) []v1.Layer {
	t.Helper()
	img, err := Image(idx, p)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestFlightBadInput(t *testing.T) {
	boom := errors.New("compiler on fire")
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"empty version", Config{}, "empty version"},
		{"version with space", Config{Version: "v 1"}, `version "v 1" is not a valid image tag`},
		{"version starting with dot", Config{Version: ".v1"}, "not a valid image tag"},
		{"unknown os", Config{Version: "v1", Platforms: []v1.Platform{{OS: "windows", Architecture: "amd64"}}}, `unknown platform "windows/amd64": use one of linux/amd64, linux/arm64`},
		{"unknown arch", Config{Version: "v1", Platforms: []v1.Platform{{OS: "linux", Architecture: "mips"}}}, `unknown platform "linux/mips"`},
		{"arm without variant", Config{Version: "v1", Platforms: []v1.Platform{{OS: "linux", Architecture: "arm"}}}, `unknown platform "linux/arm"`},
		{"duplicate platform", Config{Version: "v1", Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "arm64"}}}, "linux/arm64 listed twice"},
		{"no platforms", Config{Version: "v1", Platforms: []v1.Platform{}}, "no platforms"},
		{"no schemas", Config{Version: "v1", Schemas: []string{}}, "no state schemas"},
		{"schema with comma", Config{Version: "v1", Schemas: []string{"a,b"}}, `state schema "a,b"`},
		{"empty schema", Config{Version: "v1", Schemas: []string{"flight.state/1", ""}}, `state schema ""`},
		{"unknown strategy", Config{Version: "v1", Strategy: "yolo"}, `unknown strategy "yolo": use handoff, stop-start, start-then-stop`},
		{"negative epoch", Config{Version: "v1", SourceDateEpoch: -1}, "negative source date epoch"},
		{"build tag with comma", Config{Version: "v1", Tags: []string{"a,b"}}, `build tag "a,b"`},
		{"stamp of Version", Config{Version: "v1", Stamps: map[string]string{"Version": "v2"}}, `stamp "Version"`},
		{"stamp not an identifier", Config{Version: "v1", Stamps: map[string]string{"a.b": "x"}}, `stamp "a.b"`},
		{"stamp with space", Config{Version: "v1", Stamps: map[string]string{"fault": "a b"}}, `stamp fault="a b"`},
		{"build fails", Config{Version: "v1", Build: func(context.Context, Target) error { return boom }}, "linux/amd64: compiler on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Build == nil {
				tt.cfg.Build = func(context.Context, Target) error { t.Fatal("built despite bad input"); return nil }
			}
			_, err := Flight(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.name == "build fails" && !errors.Is(err, boom) {
				t.Fatalf("err = %v does not wrap the build error", err)
			}
		})
	}
}

func TestFlightTargets(t *testing.T) {
	var got []Target
	cfg := Config{Version: "v7", Schemas: []string{"flight.state/1", "flight.state/2"}, Dir: "/src", WorkDir: t.TempDir(),
		Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}},
		Build: func(ctx context.Context, tg Target) error {
			got = append(got, tg)
			return stubBuild(ctx, tg)
		}}
	if _, err := Flight(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	const stamp = "-s -w -buildid= -X github.com/skyswap/skyswap/images/flight/app.Version=v7 -X github.com/skyswap/skyswap/images/flight/app.Accepts=flight.state/1,flight.state/2 -X github.com/skyswap/skyswap/images/flight/app.Features=camera"
	want := []Target{
		{Package: DefaultPackage, Platform: cfg.Platforms[0], Version: "v7", Accepts: "flight.state/1,flight.state/2", LDFlags: stamp, Dir: "/src", Out: filepath.Join(cfg.WorkDir, "flight-linux-arm64")},
		{Package: DefaultPackage, Platform: cfg.Platforms[1], Version: "v7", Accepts: "flight.state/1,flight.state/2", LDFlags: stamp, Dir: "/src", Out: filepath.Join(cfg.WorkDir, "flight-linux-arm-v7")},
	}
	if len(got) != len(want) {
		t.Fatalf("%d builds, want %d", len(got), len(want))
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("build %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
		if _, err := os.Stat(want[i].Out); err != nil {
			t.Errorf("WorkDir binary not kept: %v", err)
		}
	}
}

// TestFlightTagsAndStamps: a test image's build tags reach go build and its
// stamps follow the version's, in name order.
func TestFlightTagsAndStamps(t *testing.T) {
	var got []Target
	cfg := Config{Version: "v3", Tags: []string{"skyswap_faults"}, Stamps: map[string]string{"fault": "crash", "another": "x"},
		Build: func(ctx context.Context, tg Target) error {
			got = append(got, tg)
			return stubBuild(ctx, tg)
		}}
	if _, err := Flight(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	const app = "github.com/skyswap/skyswap/images/flight/app"
	const want = "-s -w -buildid= -X " + app + ".Version=v3 -X " + app + ".Accepts=flight.state/1 -X " + app + ".Features=camera -X " + app + ".another=x -X " + app + ".fault=crash"
	if len(got) != 2 {
		t.Fatalf("%d builds, want 2", len(got))
	}
	for _, tg := range got {
		if tg.LDFlags != want || !slices.Equal(tg.Tags, []string{"skyswap_faults"}) {
			t.Errorf("%s: ldflags %q tags %v; want %q and [skyswap_faults]", tg.Platform, tg.LDFlags, tg.Tags, want)
		}
	}
}

func TestFlightConfig(t *testing.T) {
	idx := stubbed(t, Config{Version: "v1", SourceDateEpoch: 1700000000})
	mt, err := idx.MediaType()
	if err != nil || mt != types.OCIImageIndex {
		t.Fatalf("index media type %q, %v; want %q", mt, err, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range im.Manifests {
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil {
			t.Errorf("descriptor %s: media type %q, platform %v", d.Digest, d.MediaType, d.Platform)
			continue
		}
		plats = append(plats, d.Platform.String())
	}
	if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("index lists %v, want linux/amd64 and linux/arm64", plats)
	}
	created := time.Unix(1700000000, 0).UTC()
	for _, p := range DefaultPlatforms() {
		t.Run(p.String(), func(t *testing.T) {
			img, err := Image(idx, p)
			if err != nil {
				t.Fatal(err)
			}
			labels, err := Labels(img)
			if err != nil {
				t.Fatal(err)
			}
			wantLabels := map[string]string{
				"io.skyswap.app": "flight", "io.skyswap.version": "v1", "io.skyswap.strategy": "handoff",
				"io.skyswap.state-schemas": "flight.state/1", "org.opencontainers.image.version": "v1",
			}
			if fmt.Sprint(labels) != fmt.Sprint(wantLabels) {
				t.Errorf("labels %v, want %v", labels, wantLabels)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			checks := []struct {
				what      string
				got, want any
			}{
				{"entrypoint", c.Entrypoint, []string{"/flight"}},
				{"user", c.User, "65534:65534"},
				{"working dir", c.WorkingDir, "/"},
				{"env", c.Env, []string{"FLIGHT_APP=flight"}},
				{"os", cf.OS, p.OS},
				{"architecture", cf.Architecture, p.Architecture},
				{"created", cf.Created.UTC(), created},
				{"history", len(cf.History), 2},
				{"diff ids", len(cf.RootFS.DiffIDs), 2},
			}
			for _, ch := range checks {
				if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
					t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
				}
			}
			for _, h := range cf.History {
				if !h.Created.UTC().Equal(created) {
					t.Errorf("history %q created %v, want %v", h.CreatedBy, h.Created, created)
				}
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
				t.Errorf("manifest %q, config %q: want OCI", m.MediaType, m.Config.MediaType)
			}
			if len(m.Layers) != 2 {
				t.Fatalf("%d layers, want 2", len(m.Layers))
			}
			for _, l := range m.Layers {
				if l.MediaType != types.OCILayer {
					t.Errorf("layer %s media type %q, want %q", l.Digest, l.MediaType, types.OCILayer)
				}
			}
			app := listing(t, layers(t, idx, p)[1])
			if want := "0 00755 0:0 2023-11-14T22:13:20Z  262144 flight\n"; string(app) != want {
				t.Errorf("app layer:\n%s\nwant\n%s", app, want)
			}
		})
	}
}

func TestFlightReproducible(t *testing.T) {
	tests := []struct {
		name string
		a, b Config
		same bool
	}{
		{"same version", Config{Version: "v1"}, Config{Version: "v1", WorkDir: t.TempDir()}, true},
		{"same version and epoch", Config{Version: "v1", SourceDateEpoch: 42}, Config{Version: "v1", SourceDateEpoch: 42}, true},
		{"other epoch", Config{Version: "v1"}, Config{Version: "v1", SourceDateEpoch: 42}, false},
		{"other version", Config{Version: "v1"}, Config{Version: "v2"}, false},
		{"other schemas", Config{Version: "v1"}, Config{Version: "v1", Schemas: []string{"flight.state/2"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := digest(t, stubbed(t, tt.a)), digest(t, stubbed(t, tt.b))
			if (a == b) != tt.same {
				t.Fatalf("digests %s and %s: same = %v, want %v", a, b, a == b, tt.same)
			}
		})
	}
}

func TestFlightV1V2(t *testing.T) {
	v1i, v2i := stubbed(t, Config{Version: "v1"}), stubbed(t, Config{Version: "v2"})
	for _, p := range DefaultPlatforms() {
		d, err := LayerDiff(v1i, v2i, p)
		if err != nil {
			t.Fatal(err)
		}
		la, lb := layers(t, v1i, p), layers(t, v2i, p)
		if digest(t, la[0]) != digest(t, lb[0]) {
			t.Errorf("%s: base layer changed between v1 and v2", p)
		}
		if digest(t, la[1]) == digest(t, lb[1]) {
			t.Errorf("%s: app layer did not change between v1 and v2", p)
		}
		if len(d.Shared) != 1 || len(d.Added) != 1 || d.Shared[0].Digest != digest(t, la[0]).String() || d.Added[0].Digest != digest(t, lb[1]).String() {
			t.Errorf("%s: diff %+v, want the base shared and the app added", p, d)
		}
		t.Logf("%s v1 -> v2: %d layer(s) shared, fetch %d layer(s), %d bytes", p, len(d.Shared), len(d.Added), d.AddedBytes())
		// v2's feature is the camera; v1 has none and no features label.
		for _, c := range []struct {
			idx  v1.ImageIndex
			want string
		}{{v1i, ""}, {v2i, "camera"}} {
			img, err := Image(c.idx, p)
			if err != nil {
				t.Fatal(err)
			}
			l, err := Labels(img)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := l[labels.Features]; got != c.want || ok != (c.want != "") {
				t.Errorf("%s: features label %q (present %v), want %q", p, got, ok, c.want)
			}
		}
	}
}

func TestFlightFeatures(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    []string
	}{{"v1", nil}, {"v1.2", nil}, {"v2", []string{"camera"}}, {"v2b", []string{"camera"}}, {"v10", []string{"camera"}}} {
		if got := FlightFeatures(tc.version); !slices.Equal(got, tc.want) {
			t.Errorf("FlightFeatures(%q) = %v, want %v", tc.version, got, tc.want)
		}
	}
	if _, err := Flight(context.Background(), Config{Version: "v2", Features: []string{"no spaces"}}); err == nil {
		t.Error("a feature with a space was accepted")
	}
}

func TestBaseLayerGolden(t *testing.T) {
	for _, sde := range []int64{0, 1700000000} {
		l, err := baseLayer(time.Unix(sde, 0).UTC())
		if err != nil {
			t.Fatal(err)
		}
		diffID, _ := l.DiffID()
		got := append(listing(t, l), fmt.Sprintf("diff_id %s\n", diffID)...)
		golden(t, fmt.Sprintf("base-layer-%d.golden", sde), got)
		rc, _ := l.Compressed()
		gz, _ := io.ReadAll(rc)
		// gzip header: magic, deflate, no flags, MTIME 0, XFL 0, OS 255.
		if want := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}; !bytes.Equal(gz[:10], want) {
			t.Errorf("gzip header % x, want % x", gz[:10], want)
		}
	}
}

// TestGolden pins the wire bytes: index, manifest and config of a stubbed
// build, and the summary skyswap-images prints.
func TestGolden(t *testing.T) {
	idx := stubbed(t, Config{Version: "v1"})
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "index.json.golden", append(raw, '\n'))
	img, err := Image(idx, v1.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if raw, err = img.RawManifest(); err != nil {
		t.Fatal(err)
	}
	golden(t, "manifest-linux-arm64.json.golden", append(raw, '\n'))
	if raw, err = img.RawConfigFile(); err != nil {
		t.Fatal(err)
	}
	golden(t, "config-linux-arm64.json.golden", append(raw, '\n'))
	s, err := Summarize(idx)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.json.golden", append(js, '\n'))
}

func TestImageMissingPlatform(t *testing.T) {
	idx := stubbed(t, Config{Version: "v1", Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}}})
	_, err := LayerDiff(idx, idx, v1.Platform{OS: "linux", Architecture: "amd64"})
	if err == nil || !strings.Contains(err.Error(), "no image for linux/amd64") {
		t.Fatalf("err = %v, want no image for linux/amd64", err)
	}
}
