// Package build makes the flight app's container images without Docker,
// with github.com/google/go-containerregistry.
//
// Flight cross-compiles the flight binary for each platform (CGO off,
// -trimpath, no VCS stamp, no build id, stripped) and assembles, per
// platform, a scratch-based OCI image of exactly two layers:
//
//  1. base: /etc/passwd and /etc/group with a flight user and group 65534,
//     and /tmp (mode 1777). Its bytes depend on nothing but
//     Config.SourceDateEpoch, so every version shares it.
//  2. app: /flight (mode 0755), the only layer a new version changes.
//
// The images go into one OCI image index (linux/amd64 and linux/arm64 by
// default). Every timestamp is Config.SourceDateEpoch and the tar and gzip
// streams are written deterministically, so building the same version twice
// gives the same index digest.
//
// The image config declares the update contract in labels (labels.App,
// labels.Version, labels.Strategy, labels.StateSchemas): the agent reads them to
// refuse an incompatible candidate before it runs.
//
// Push writes the index to a registry (plain HTTP to loopback registries);
// WriteLayout writes it to an OCI image layout directory, tagged. Summarize
// and LayerDiff read an index back for reports and tests.
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/images/labels"
)

// Image labels. The state-schemas label is a comma-separated list of the
// state schema ids the image hydrates from.
const (
	LabelOCIVersion = "org.opencontainers.image.version"
)

// FlightFeatures are the optional features each release of the flight app
// in this repository turns on (app.Features): v1 flies; v2 adds the camera
// (FLIR Lepton) and every later version keeps it. Versions are stamps on
// one source tree here, so this table is where a release's feature set is
// decided.
func FlightFeatures(version string) []string {
	if version == "v1" || strings.HasPrefix(version, "v1.") {
		return nil
	}
	return []string{"camera"}
}

// Defaults for the zero values of Config.
const (
	DefaultPackage = "github.com/skyswap/skyswap/images/flight"
	DefaultSchema  = "flight.state/1"
)

// Fixed parts of the image.
const (
	AppName    = labels.DefaultApp // io.skyswap.app, FLIGHT_APP and the user name
	Entrypoint = "/flight"         // the binary's path in the image
	User       = "65534:65534"     // uid:gid the app runs as (the flight user)
)

// DefaultPlatforms are the platforms built when Config.Platforms is nil.
func DefaultPlatforms() []v1.Platform {
	return []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
}

// supported lists the platforms Flight builds, as os/arch[/variant].
var supported = []string{"linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v6", "linux/arm/v7"}

// Config says what Flight builds. The zero value of each field means the
// default noted beside it; only Version is required.
type Config struct {
	// Package is the Go package of the app's main. The build stamps
	// Package+"/app".Version and .Accepts. "" = DefaultPackage.
	Package string
	// Version is the app version: stamped into the binary and the labels,
	// and the tag a layout records. Required; tag grammar
	// ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}).
	Version string
	// Schemas are the state schema ids the image accepts, stamped into the
	// binary (app.Accepts) and the labels.StateSchemas label.
	// nil = [DefaultSchema].
	Schemas []string
	// Strategy is the update strategy the image declares, one of
	// strategy.All. "" = strategy.Default.
	Strategy string
	// Platforms to build, in index order; OS must be linux.
	// nil = DefaultPlatforms().
	Platforms []v1.Platform
	// SourceDateEpoch is every timestamp in the images (tar mtimes, config
	// and history Created), Unix seconds. 0 = 1970-01-01T00:00:00Z; callers
	// pass $SOURCE_DATE_EPOCH. Negative is an error.
	SourceDateEpoch int64
	// Dir is the directory the go command runs in; it must be inside the
	// module that holds Package. "" = the current directory.
	Dir string
	// WorkDir receives the binaries (flight-<os>-<arch>[-<variant>]) and
	// keeps them. "" = a temporary directory, removed before Flight returns.
	WorkDir string
	// Build compiles one binary. nil = GoBuild; tests stub it.
	Build BuildFunc
	// Tags are extra Go build tags of the binary (go build -tags), e.g.
	// skyswap_faults for test images that misbehave on purpose. nil = none.
	Tags []string
	// Features are the app's optional features, stamped into the binary
	// (app.Features) and the labels.Features label. nil =
	// FlightFeatures(Version); empty = none.
	Features []string
	// Stamps are extra string variables of Package+"/app" set at link
	// time, name -> value (-X Package/app.name=value, in name order after
	// Version and Accepts), e.g. "fault": "crash" with the skyswap_faults
	// tag. The linker ignores a name the binary does not declare. nil =
	// none; a normal build has none, so its digests do not change.
	Stamps map[string]string
}

// Target is one binary for a BuildFunc to produce.
type Target struct {
	Package  string      // Go package of the main
	Platform v1.Platform // GOOS, GOARCH and (for arm) GOARM
	Version  string      // app version
	Accepts  string      // comma-separated state schemas
	LDFlags  string      // the complete -ldflags value, version stamps included
	Tags     []string    // go build -tags; nil = none
	Dir      string      // directory to run the go command in; "" = current
	Out      string      // path of the binary to write
}

// BuildFunc compiles t.Package for t.Platform into t.Out.
type BuildFunc func(ctx context.Context, t Target) error

// GoBuild is the real BuildFunc: a reproducible cross-compile,
//
//	CGO_ENABLED=0 GOOS=.. GOARCH=.. go build -trimpath -buildvcs=false \
//	    [-tags T,..] -ldflags "-s -w -buildid= -X ...Version=.. -X ...Accepts=.." -o OUT PKG
//
// with the rest of the environment inherited (go from PATH).
func GoBuild(ctx context.Context, t Target) error {
	args := []string{"build", "-trimpath", "-buildvcs=false"}
	if len(t.Tags) > 0 {
		args = append(args, "-tags", strings.Join(t.Tags, ","))
	}
	args = append(args, "-ldflags", t.LDFlags, "-o", t.Out, t.Package)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = t.Dir
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+t.Platform.OS, "GOARCH="+t.Platform.Architecture)
	if t.Platform.Architecture == "arm" {
		env = append(env, "GOARM="+strings.TrimPrefix(t.Platform.Variant, "v"))
	}
	cmd.Env = env // exec keeps the last value of a repeated key
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w: %s", t.Package, t.Platform, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

var (
	tagRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	schemaRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./+-]*$`)
	buildTagRE = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	identRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	stampRE    = regexp.MustCompile(`^[A-Za-z0-9_./+,:=-]*$`)
)

// Validate reports the first problem with c, before anything is built:
// what Flight would refuse.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolve checks c and fills in the defaults.
func (c Config) resolve() (Config, error) {
	if c.Version == "" {
		return c, errors.New("build: empty version: name the version to build, e.g. v1")
	}
	if !tagRE.MatchString(c.Version) {
		return c, fmt.Errorf("build: version %q is not a valid image tag: use letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", c.Version)
	}
	if c.Package == "" {
		c.Package = DefaultPackage
	}
	if c.Schemas == nil {
		c.Schemas = []string{DefaultSchema}
	}
	if c.Features == nil {
		c.Features = FlightFeatures(c.Version)
	}
	for _, f := range c.Features {
		if !identRE.MatchString(f) {
			return c, fmt.Errorf("build: feature %q: use a word of letters, digits and '_' (e.g. camera)", f)
		}
	}
	if len(c.Schemas) == 0 {
		return c, fmt.Errorf("build: no state schemas: list at least one (the default is %s)", DefaultSchema)
	}
	for _, s := range c.Schemas {
		if !schemaRE.MatchString(s) {
			return c, fmt.Errorf("build: state schema %q is not an id like %s (letters, digits and _./+-, no commas or spaces)", s, DefaultSchema)
		}
	}
	if c.Strategy == "" {
		c.Strategy = string(strategy.Default)
	}
	if err := strategy.Check(c.Strategy); err != nil {
		return c, fmt.Errorf("build: %w", err)
	}
	if c.Platforms == nil {
		c.Platforms = DefaultPlatforms()
	}
	if len(c.Platforms) == 0 {
		return c, errors.New("build: no platforms: list at least one (the default is linux/amd64 and linux/arm64)")
	}
	seen := map[string]bool{}
	for _, p := range c.Platforms {
		if !slices.Contains(supported, p.String()) || len(p.OSFeatures)+len(p.Features) > 0 || p.OSVersion != "" {
			return c, fmt.Errorf("build: unknown platform %q: use one of %s", p.String(), strings.Join(supported, ", "))
		}
		if seen[p.String()] {
			return c, fmt.Errorf("build: platform %s listed twice", p)
		}
		seen[p.String()] = true
	}
	if c.SourceDateEpoch < 0 {
		return c, fmt.Errorf("build: negative source date epoch %d: use Unix seconds >= 0", c.SourceDateEpoch)
	}
	for _, t := range c.Tags {
		if !buildTagRE.MatchString(t) {
			return c, fmt.Errorf("build: build tag %q: use letters, digits, '_' and '.'", t)
		}
	}
	for name, v := range c.Stamps {
		if !identRE.MatchString(name) || name == "Version" || name == "Accepts" || name == "Features" {
			return c, fmt.Errorf("build: stamp %q: name a string variable of the app package other than Version, Accepts and Features (set those with Version, Schemas and Features)", name)
		}
		if !stampRE.MatchString(v) {
			return c, fmt.Errorf("build: stamp %s=%q: the value may hold letters, digits and _./+,:=- only (no spaces or quotes)", name, v)
		}
	}
	if c.Build == nil {
		c.Build = GoBuild
	}
	return c, nil
}

// Labels the image config carries for c (resolved).
func (c Config) labels() map[string]string {
	l := map[string]string{
		labels.App:          AppName,
		labels.Version:      c.Version,
		labels.Strategy:     c.Strategy,
		labels.StateSchemas: strings.Join(c.Schemas, ","),
		LabelOCIVersion:     c.Version,
	}
	if len(c.Features) > 0 {
		l[labels.Features] = strings.Join(c.Features, ",")
	}
	return l
}

// Flight builds the flight app's multi-arch image index described by cfg.
// The index and its images are held in memory; Push or WriteLayout store
// them.
func Flight(ctx context.Context, cfg Config) (v1.ImageIndex, error) {
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	work := c.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "skyswap-images-"); err != nil {
			return nil, fmt.Errorf("build: work dir: %w", err)
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("build: work dir: %w", err)
	}
	created := time.Unix(c.SourceDateEpoch, 0).UTC()
	base, err := baseLayer(created)
	if err != nil {
		return nil, fmt.Errorf("build: base layer: %w", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range c.Platforms {
		img, err := c.image(ctx, p, base, work, created)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &p},
		})
	}
	if _, err := idx.Digest(); err != nil { // compute once, here, so errors surface from Flight
		return nil, fmt.Errorf("build: index: %w", err)
	}
	return idx, nil
}

// Binary builds the app binary cfg describes for p into out, exactly as
// its image would carry it (the version, schema and feature stamps): the
// one build of the flight app that make build, the rig and the images
// share. cfg.Platforms is not used.
func Binary(ctx context.Context, cfg Config, p v1.Platform, out string) error {
	cfg.Platforms = []v1.Platform{p}
	c, err := cfg.resolve()
	if err != nil {
		return err
	}
	if err := c.Build(ctx, c.target(p, out)); err != nil {
		return fmt.Errorf("build: %s: %w", p, err)
	}
	return nil
}

// target is the binary of c for p, written to out.
func (c Config) target(p v1.Platform, out string) Target {
	accepts := strings.Join(c.Schemas, ",")
	stamp := c.Package + "/app"
	ldflags := fmt.Sprintf("-s -w -buildid= -X %s.Version=%s -X %s.Accepts=%s", stamp, c.Version, stamp, accepts)
	if len(c.Features) > 0 {
		ldflags += fmt.Sprintf(" -X %s.Features=%s", stamp, strings.Join(c.Features, ","))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Stamps)) {
		ldflags += fmt.Sprintf(" -X %s.%s=%s", stamp, name, c.Stamps[name])
	}
	return Target{Package: c.Package, Platform: p, Version: c.Version, Accepts: accepts, LDFlags: ldflags,
		Tags: c.Tags, Dir: c.Dir, Out: out}
}

// image builds the binary for p and assembles its image.
func (c Config) image(ctx context.Context, p v1.Platform, base v1.Layer, work string, created time.Time) (v1.Image, error) {
	name := "flight-" + strings.ReplaceAll(p.String(), "/", "-")
	t := c.target(p, filepath.Join(work, name))
	if err := c.Build(ctx, t); err != nil {
		return nil, fmt.Errorf("build: %s: %w", p, err)
	}
	bin, err := os.ReadFile(t.Out)
	if err != nil {
		return nil, fmt.Errorf("build: %s: read binary: %w", p, err)
	}
	app, err := appLayer(bin, created)
	if err != nil {
		return nil, fmt.Errorf("build: %s: app layer: %w", p, err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint: []string{Entrypoint},
			User:       User,
			WorkingDir: "/",
			Env:        []string{"FLIGHT_APP=" + AppName},
			Labels:     c.labels(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("build: %s: config: %w", p, err)
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "skyswap-images: base: /etc/passwd, /etc/group (flight 65534), /tmp",
		}},
		mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: fmt.Sprintf("skyswap-images: app: %s %s (%s)", Entrypoint, c.Version, c.Package),
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("build: %s: layers: %w", p, err)
	}
	return img, nil
}
