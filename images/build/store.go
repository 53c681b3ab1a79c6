package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushConfig says how Push reaches the registry. The zero value speaks
// HTTPS, except to loopback registries (localhost, 127.0.0.0/8, ::1), which
// are plain HTTP, and authenticates from the default keychain
// (~/.docker/config.json and its helpers).
type PushConfig struct {
	// Insecure uses plain HTTP whatever the host. false = HTTPS except
	// loopback.
	Insecure bool
	// Remote are extra options for remote.WriteIndex (transport, auth,
	// progress), applied after the defaults. nil = none.
	Remote []remote.Option
}

// ParseReference parses ref ("host[:port]/repo:tag" or "...@sha256:...")
// as Push does: plain HTTP if insecure or the host is loopback.
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("build: image reference %q: %w (want host[:port]/repo:tag)", ref, err)
	}
	if insecure || isLoopback(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(ref, name.StrictValidation, name.Insecure); err != nil {
			return nil, fmt.Errorf("build: image reference %q: %w", ref, err)
		}
	}
	return r, nil
}

// isLoopback reports whether a registry host[:port] is on this machine.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Push writes idx, its images and their blobs to ref (see ParseReference)
// and returns the index digest: pin the image by it. Blobs the registry
// already has are not uploaded, so pushing v2 after v1 uploads the app
// layers and configs only.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, pc PushConfig) (v1.Hash, error) {
	r, err := ParseReference(ref, pc.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("build: push %s: %w", ref, err)
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, pc.Remote...)
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("build: push %s: %w", ref, err)
	}
	return d, nil
}

// WriteLayout writes idx into the OCI image layout at dir, creating the
// layout if dir is missing or empty, and records it in index.json under the
// annotation org.opencontainers.image.ref.name = tag, replacing what that
// tag named before. Blobs already in the layout are kept, so versions share
// their base layers.
func WriteLayout(dir, tag string, idx v1.ImageIndex) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("build: layout tag %q is not a valid image tag", tag)
	}
	p, err := openLayout(dir)
	if err != nil {
		return err
	}
	if err := p.ReplaceIndex(idx, match.Name(tag), layout.WithAnnotations(map[string]string{refName: tag})); err != nil {
		return fmt.Errorf("build: layout %s: %w", dir, err)
	}
	return nil
}

// refName is the OCI annotation a layout's index.json names images by.
const refName = "org.opencontainers.image.ref.name"

// openLayout opens the layout at dir or starts one there.
func openLayout(dir string) (layout.Path, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		p, err := layout.FromPath(dir)
		if err != nil {
			return "", fmt.Errorf("build: layout %s: %w", dir, err)
		}
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("build: layout %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("build: layout %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return "", fmt.Errorf("build: %s is not an OCI image layout (no index.json) and not empty: pick a new directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build: layout %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("build: layout %s: %w", dir, err)
	}
	return p, nil
}

// ReadLayout returns the index tagged tag in the OCI image layout at dir.
func ReadLayout(dir, tag string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("build: layout %s: %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("build: layout %s: %w", dir, err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("build: layout %s: %w", dir, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[refName] == tag {
			idx, err := top.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("build: layout %s: %s: %w", dir, tag, err)
			}
			return idx, nil
		}
	}
	return nil, fmt.Errorf("build: layout %s has no index tagged %q", dir, tag)
}
