package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/skyswap/skyswap/agent/command"
)

// ErrImageNotFound: the registry has no manifest for the tag (or no such
// repository).
var ErrImageNotFound = errors.New("push: image not found")

// Resolve returns ref pinned by digest, NAME:TAG@sha256:<hex>, as a command
// carries it.
//
// ref is "flight:v2", "host:port/flight:v2" or either already pinned. A
// short name (no registry: the first path component has no '.' or ':' and
// is not "localhost") is looked up in defaultRegistry (host[:port]); a short
// name without a defaultRegistry is an error, since a drone would not know
// where to pull it from. A ref without a tag or digest means the tag
// "latest", which the result spells out. A ref already pinned is returned
// as is (with defaultRegistry prepended if short), without asking the
// registry: the digest is the drone's to check.
//
// Otherwise Resolve asks the registry for the digest of the manifest (or
// index) the tag names; plainHTTP forces plain HTTP (go-containerregistry
// already tries it for loopback and private addresses). A tag the registry
// does not have is ErrImageNotFound, with the ref and the registry in the
// message.
func Resolve(ctx context.Context, ref, defaultRegistry string, plainHTTP bool) (string, error) {
	full := ref
	if isShort(ref) {
		if defaultRegistry == "" {
			return "", fmt.Errorf("push: image %q names no registry: give HOST[:PORT]/%s, or a default registry for short names (dronectl -registry, $DRONECTL_REGISTRY)", ref, ref)
		}
		if strings.Contains(defaultRegistry, "://") || strings.Trim(defaultRegistry, "/") == "" {
			return "", fmt.Errorf("push: default registry %q: give HOST[:PORT], without a scheme", defaultRegistry)
		}
		full = strings.TrimSuffix(defaultRegistry, "/") + "/" + ref
	}
	if strings.Contains(full, "@") {
		if err := command.CheckImage(full); err != nil {
			return "", fmt.Errorf("push: image %q: %w", ref, err)
		}
		return full, nil
	}
	opts := []name.Option{name.StrictValidation}
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	if !hasTag(full) {
		full += ":latest"
	}
	tag, err := name.NewTag(full, opts...)
	if err != nil {
		return "", fmt.Errorf("push: image %q is not a reference of the form [HOST[:PORT]/]NAME[:TAG]: %w", ref, err)
	}
	reg := tag.RegistryStr()
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	desc, err := remote.Head(tag, ropts...)
	if err != nil && !notFound(err) {
		// Some registries answer HEAD badly (no digest header, 405):
		// GET is the reference.
		var d *remote.Descriptor
		if d, err = remote.Get(tag, ropts...); err == nil {
			desc = &d.Descriptor
		}
	}
	switch {
	case notFound(err):
		return "", fmt.Errorf("%w: registry %s has no %s:%s (from %q): push it first (make images), or check the name and tag",
			ErrImageNotFound, reg, tag.RepositoryStr(), tag.TagStr(), ref)
	case err != nil:
		hint := "is the registry up, and its address right?"
		if tag.Registry.Scheme() == "https" {
			hint += " A registry without TLS needs plain HTTP (dronectl -plain-http)"
		}
		return "", fmt.Errorf("push: resolve %q at registry %s: %w (%s)", ref, reg, err, hint)
	}
	pinned := full + "@" + desc.Digest.String()
	if err := command.CheckImage(pinned); err != nil {
		return "", fmt.Errorf("push: registry %s named %q by digest %s, which a command cannot carry: %w", reg, ref, desc.Digest, err)
	}
	return pinned, nil
}

// isShort reports whether ref names no registry, as Docker decides it.
func isShort(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	if !ok {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost"
}

// hasTag reports whether ref (no digest) ends in :TAG.
func hasTag(ref string) bool {
	i := strings.LastIndexByte(ref, ':')
	return i > strings.LastIndexByte(ref, '/')
}

func notFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}
