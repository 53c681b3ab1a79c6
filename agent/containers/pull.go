package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/transfer"
	"github.com/containerd/containerd/v2/pkg/reference"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is a pulled image, for this host's platform.
type Image struct {
	Ref    string // as given to Pull: host/name@sha256:...
	Digest string // the digest the reference pins (index or manifest)
	// Labels are the image configuration's labels (update strategy, state
	// schemas). Nil if it has none.
	Labels map[string]string
	// Size is what this platform's image takes in the content store:
	// index, manifest, config and compressed layers.
	Size int64
	// Fetched is how many bytes this pull downloaded; content already
	// present (layers shared with an earlier release, or the whole image
	// pulled before) is not fetched again.
	Fetched int64
}

// Progress reports a pull's downloads as they happen.
type Progress struct {
	Digest string // the blob being fetched
	Size   int64  // its size
	Offset int64  // bytes of it fetched so far
	// Fetched is the bytes fetched by this pull so far, all blobs.
	Fetched int64
}

// progressEvery is how many bytes of a blob pass between Progress calls.
const progressEvery = 256 << 10

// Pull fetches the image that ref pins by digest, for this host's platform
// only, into containerd and unpacks it for the snapshotter. Blobs already
// present are not fetched again. progress, if not nil, is called from the
// fetching goroutines, one call at a time, at most every 256 KiB of a blob
// and at each blob's end.
//
// An image already complete in containerd (content and snapshots) is
// returned without asking the registry (Fetched 0), so a drone that lost
// its link can still "pull" the release it keeps for a rollback.
//
// A reference without a digest is refused. A digest the registry does not
// have is ErrNotFound. An image index with no manifest for this platform is
// ErrNoPlatform, and nothing of it is stored.
func (r *Runtime) Pull(ctx context.Context, ref string, progress func(Progress)) (Image, error) {
	ctx = r.ctx(ctx)
	spec, err := pinned("pull", ref)
	if err != nil {
		return Image{}, err
	}
	if img, err := r.local(ctx, ref); err == nil {
		return img, nil
	}
	// One lease over the whole pull: what the pre-check stores survives
	// until the image record holds it, and is collected if the pull fails.
	ctx, done, err := r.c.WithLease(ctx)
	if err != nil {
		return Image{}, classify(err, "pull %s: lease", ref)
	}
	defer done(context.WithoutCancel(ctx))

	fc := &fetchCounter{progress: progress}
	res := &countingResolver{Resolver: r.resolver(), fc: fc}
	name, desc, err := res.Resolve(ctx, ref)
	if err != nil {
		return Image{}, classify(err, "pull: resolve (is the digest right, and the registry the one it was pushed to?)")
	}
	if desc.Digest != spec.Digest() {
		return Image{}, fmt.Errorf("containers: pull %s: the registry answered with %s", ref, desc.Digest)
	}
	if images.IsIndexType(desc.MediaType) {
		if err := r.checkIndex(ctx, res, name, desc); err != nil {
			return Image{}, err
		}
	}
	img, err := r.c.Pull(ctx, ref,
		client.WithResolver(res),
		client.WithPlatformMatcher(r.platform),
		client.WithPullUnpack,
		client.WithPullSnapshotter(r.snapshotter))
	if err != nil {
		return Image{}, classify(err, "pull %s", ref)
	}
	out, err := r.describe(ctx, img, ref)
	if errors.Is(err, ErrNoPlatform) {
		// A single-platform manifest for another platform: only its config
		// says so. Drop it rather than start a binary that cannot run.
		_ = r.c.ImageService().Delete(ctx, ref, images.SynchronousDelete())
	}
	if err != nil {
		return Image{}, err
	}
	out.Fetched = fc.total()
	return out, nil
}

// local returns the image if ref is complete in containerd already.
func (r *Runtime) local(ctx context.Context, ref string) (Image, error) {
	img, err := r.c.GetImage(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	ok, _, _, missing, err := images.Check(ctx, r.c.ContentStore(), img.Target(), r.platform)
	if err != nil {
		return Image{}, err
	}
	if !ok || len(missing) > 0 {
		return Image{}, fmt.Errorf("%w: %s is incomplete", ErrNotFound, ref)
	}
	if ok, err := img.IsUnpacked(ctx, r.snapshotter); err != nil || !ok {
		return Image{}, fmt.Errorf("%w: %s is not unpacked", ErrNotFound, ref)
	}
	return r.describe(ctx, img, ref)
}

// describe reads what Image reports about a stored image, and refuses one
// whose configuration is for another platform.
func (r *Runtime) describe(ctx context.Context, img client.Image, ref string) (Image, error) {
	cfg, err := img.Spec(ctx)
	if err != nil {
		return Image{}, classify(err, "pull %s: image config", ref)
	}
	if p := (ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}); !r.platform.Match(p) {
		return Image{}, fmt.Errorf("%w: %s is for %s, this host is %s: push an image (index) built for %s",
			ErrNoPlatform, ref, platforms.Format(p), r.Platform(), r.Platform())
	}
	size, err := img.Size(ctx)
	if err != nil {
		return Image{}, classify(err, "pull %s: size", ref)
	}
	return Image{Ref: ref, Digest: img.Target().Digest.String(), Labels: cfg.Config.Labels, Size: size}, nil
}

// checkIndex reads the image index (from the content store, or fetched and
// then stored under the pull's lease so that the pull does not fetch it
// again) and refuses it if it lists no manifest for this platform.
func (r *Runtime) checkIndex(ctx context.Context, res remotes.Resolver, name string, desc ocispec.Descriptor) error {
	store := r.c.ContentStore()
	p, err := content.ReadBlob(ctx, store, desc)
	fetched := false
	if errdefs.IsNotFound(err) {
		p, err = fetchBlob(ctx, res, name, desc)
		fetched = true
	}
	if err != nil {
		return classify(err, "pull %s: index", name)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(p, &idx); err != nil {
		return fmt.Errorf("containers: pull %s: index: %w", name, err)
	}
	if _, err := r.hostManifest(name, idx); err != nil {
		return err
	}
	if fetched {
		err := content.WriteBlob(ctx, store, remotes.MakeRefKey(ctx, desc), bytes.NewReader(p), desc)
		if err != nil && !errdefs.IsAlreadyExists(err) {
			return classify(err, "pull %s: store index", name)
		}
	}
	return nil
}

// hostManifest picks the manifest of idx that this host runs, the best
// match as containerd's pull picks it; none is ErrNoPlatform.
func (r *Runtime) hostManifest(name string, idx ocispec.Index) (ocispec.Descriptor, error) {
	var match []ocispec.Descriptor
	var have []string
	for _, m := range idx.Manifests {
		// As containerd's own filter: a manifest without a platform matches.
		if m.Platform == nil || r.platform.Match(*m.Platform) {
			match = append(match, m)
		} else {
			have = append(have, platforms.Format(*m.Platform))
		}
	}
	if len(match) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s has %s, this host is %s: push an index that includes %s",
			ErrNoPlatform, name, strings.Join(have, ", "), r.Platform(), r.Platform())
	}
	slices.SortStableFunc(match, func(a, b ocispec.Descriptor) int {
		switch {
		case a.Platform == nil || b.Platform == nil:
			return 0
		case r.platform.Less(*a.Platform, *b.Platform):
			return -1
		case r.platform.Less(*b.Platform, *a.Platform):
			return 1
		}
		return 0
	})
	return match[0], nil
}

// maxMeta bounds an index, manifest or config read into memory.
const maxMeta = 4 << 20

func fetchBlob(ctx context.Context, res remotes.Resolver, name string, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxMeta {
		return nil, fmt.Errorf("blob %s of %d bytes is over the %d-byte limit for image metadata", desc.Digest, desc.Size, maxMeta)
	}
	f, err := res.Fetcher(ctx, name)
	if err != nil {
		return nil, err
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	p, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(p)) != desc.Size || desc.Digest.Algorithm().FromBytes(p) != desc.Digest {
		return nil, fmt.Errorf("blob %s: content does not match its digest", desc.Digest)
	}
	return p, nil
}

// Lookup reads what Pull would take for ref without pulling it: the image
// index (when ref pins one), this host's manifest and its configuration,
// each from containerd's content store when there, else from the registry.
// No layer is fetched and nothing is stored, so an image refused on its
// labels costs a few kilobytes and leaves no trace.
//
// The Image has Ref, Digest, Labels, Size (what Pull would store: index,
// manifest, config and compressed layers) and Fetched (the bytes read
// from the registry: the index, manifest and config only). A Pull after a
// Lookup fetches those few again. An image complete in containerd is
// described without the registry (Fetched 0), as Pull does.
//
// Errors are Pull's: a reference without a digest is refused, a digest
// the registry does not have is ErrNotFound, an image without this host's
// platform is ErrNoPlatform. On error the returned Image's Fetched still
// counts what was read.
func (r *Runtime) Lookup(ctx context.Context, ref string) (Image, error) {
	ctx = r.ctx(ctx)
	spec, err := pinned("look up", ref)
	if err != nil {
		return Image{}, err
	}
	if img, err := r.local(ctx, ref); err == nil {
		return img, nil
	}
	fc := &fetchCounter{}
	out := Image{Ref: ref, Digest: spec.Digest().String()}
	fail := func(err error) (Image, error) {
		out.Fetched = fc.total()
		return out, err
	}
	res := &countingResolver{Resolver: r.resolver(), fc: fc}
	name, desc, err := res.Resolve(ctx, ref)
	if err != nil {
		return fail(classify(err, "look up %s: resolve (is the digest right, and the registry the one it was pushed to?)", ref))
	}
	if desc.Digest != spec.Digest() {
		return fail(fmt.Errorf("containers: look up %s: the registry answered with %s", ref, desc.Digest))
	}
	read := func(d ocispec.Descriptor, what string, v any) error {
		p, err := content.ReadBlob(ctx, r.c.ContentStore(), d)
		if errdefs.IsNotFound(err) {
			p, err = fetchBlob(ctx, res, name, d)
		}
		if err != nil {
			return classify(err, "look up %s: %s", ref, what)
		}
		if err := json.Unmarshal(p, v); err != nil {
			return fmt.Errorf("containers: look up %s: %s: %w", ref, what, err)
		}
		return nil
	}
	if images.IsIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := read(desc, "index", &idx); err != nil {
			return fail(err)
		}
		out.Size += desc.Size
		if desc, err = r.hostManifest(name, idx); err != nil {
			return fail(err)
		}
	}
	if !images.IsManifestType(desc.MediaType) {
		return fail(fmt.Errorf("containers: look up %s: media type %q is not an image manifest or index", ref, desc.MediaType))
	}
	var m ocispec.Manifest
	if err := read(desc, "manifest", &m); err != nil {
		return fail(err)
	}
	out.Size += desc.Size + m.Config.Size
	for _, l := range m.Layers {
		out.Size += l.Size
	}
	var cfg ocispec.Image
	if err := read(m.Config, "config", &cfg); err != nil {
		return fail(err)
	}
	if p := cfg.Platform; !r.platform.Match(p) {
		return fail(fmt.Errorf("%w: %s is for %s, this host is %s: push an image (index) built for %s",
			ErrNoPlatform, ref, platforms.Format(p), r.Platform(), r.Platform()))
	}
	out.Labels = cfg.Config.Labels
	out.Fetched = fc.total()
	return out, nil
}

// pinned parses ref and refuses it without a digest.
func pinned(op, ref string) (reference.Spec, error) {
	spec, err := reference.Parse(ref)
	if err != nil {
		return spec, fmt.Errorf("containers: %s %q: %w (want host/name@sha256:...)", op, ref, err)
	}
	if spec.Digest() == "" {
		return spec, fmt.Errorf("containers: %s %q: not pinned by digest (want host/name@sha256:...)", op, ref)
	}
	return spec, nil
}

// RemoveImage deletes the image record of ref and collects the content and
// snapshots no other image or container uses (layers shared with the
// release that is kept stay). An absent image is not an error.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	ctx = r.ctx(ctx)
	err := r.c.ImageService().Delete(ctx, ref, images.SynchronousDelete())
	if err != nil && !errdefs.IsNotFound(err) {
		return classify(err, "remove image %s", ref)
	}
	return nil
}

// countingResolver hands out fetchers that count the bytes they read. The
// docker resolver's Resolve (a HEAD request) is not counted.
type countingResolver struct {
	remotes.Resolver
	fc *fetchCounter
}

var _ remotes.ResolverWithOptions = (*countingResolver)(nil)

func (c *countingResolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	f, err := c.Resolver.Fetcher(ctx, ref)
	if err != nil {
		return nil, err
	}
	return remotes.FetcherFunc(func(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		rc, err := f.Fetch(ctx, desc)
		if err != nil {
			return nil, err
		}
		cr := &countingReader{rc: rc, fc: c.fc, desc: desc}
		if s, ok := rc.(io.Seeker); ok {
			// content.Copy seeks to resume a partial download: keep that.
			return &countingSeeker{countingReader: cr, s: s}, nil
		}
		return cr, nil
	}), nil
}

func (c *countingResolver) SetOptions(opts ...transfer.ImageResolverOption) {
	if o, ok := c.Resolver.(remotes.ResolverWithOptions); ok {
		o.SetOptions(opts...)
	}
}

type fetchCounter struct {
	mu       sync.Mutex
	n        int64
	progress func(Progress)
}

func (f *fetchCounter) add(c *countingReader, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n += int64(n)
	c.off += int64(n)
	if f.progress != nil && c.off != c.last && (c.off >= c.desc.Size || c.off-c.last >= progressEvery) {
		c.last = c.off
		f.progress(Progress{Digest: c.desc.Digest.String(), Size: c.desc.Size, Offset: c.off, Fetched: f.n})
	}
}

func (f *fetchCounter) total() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

type countingReader struct {
	rc        io.ReadCloser
	fc        *fetchCounter
	desc      ocispec.Descriptor
	off, last int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if n > 0 {
		c.fc.add(c, n)
	}
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

type countingSeeker struct {
	*countingReader
	s io.Seeker
}

func (c *countingSeeker) Seek(offset int64, whence int) (int64, error) {
	n, err := c.s.Seek(offset, whence)
	if err == nil {
		c.fc.mu.Lock()
		c.off, c.last = n, n
		c.fc.mu.Unlock()
	}
	return n, err
}
