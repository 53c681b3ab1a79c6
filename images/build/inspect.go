package build

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Labels returns the labels of img's config (nil if it has none).
func Labels(img v1.Image) (map[string]string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build: config: %w", err)
	}
	return cf.Config.Labels, nil
}

// Image returns the image idx lists for platform p (os, architecture and
// variant equal).
func Image(idx v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("build: index: %w", err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && d.Platform.Variant == p.Variant {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("build: image %s: %w", p, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("build: index has no image for %s", p)
}

// Summary describes an index: what skyswap-images prints.
type Summary struct {
	Index     string            `json:"index"` // digest of the index
	Platforms []PlatformSummary `json:"platforms"`
}

// PlatformSummary describes one image of an index.
type PlatformSummary struct {
	Platform string      `json:"platform"` // os/arch[/variant]
	Manifest string      `json:"manifest"` // digest of the image manifest
	Config   string      `json:"config"`   // digest of the image config
	Layers   []BlobStats `json:"layers"`   // base first, then app
}

// BlobStats is a blob's digest and size in bytes (compressed, as stored).
type BlobStats struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Summarize describes idx and each of its images, in index order.
func Summarize(idx v1.ImageIndex) (Summary, error) {
	d, err := idx.Digest()
	if err != nil {
		return Summary{}, fmt.Errorf("build: index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return Summary{}, fmt.Errorf("build: index: %w", err)
	}
	s := Summary{Index: d.String()}
	for _, desc := range im.Manifests {
		ps := PlatformSummary{Manifest: desc.Digest.String()}
		if desc.Platform != nil {
			ps.Platform = desc.Platform.String()
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return Summary{}, fmt.Errorf("build: image %s: %w", ps.Platform, err)
		}
		if ps.Layers, err = layerStats(img); err != nil {
			return Summary{}, fmt.Errorf("build: image %s: %w", ps.Platform, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return Summary{}, fmt.Errorf("build: image %s: %w", ps.Platform, err)
		}
		ps.Config = m.Config.Digest.String()
		s.Platforms = append(s.Platforms, ps)
	}
	return s, nil
}

func layerStats(img v1.Image) ([]BlobStats, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	out := make([]BlobStats, 0, len(m.Layers))
	for _, l := range m.Layers {
		out = append(out, BlobStats{Digest: l.Digest.String(), Size: l.Size})
	}
	return out, nil
}

// Diff compares one platform's image in two indexes, layer by layer.
type Diff struct {
	Platform string
	Shared   []BlobStats // b's layers that a has too
	Added    []BlobStats // b's layers that a lacks: what a holder of a fetches to run b
}

// AddedBytes is the total size of d.Added.
func (d Diff) AddedBytes() int64 {
	var n int64
	for _, l := range d.Added {
		n += l.Size
	}
	return n
}

// LayerDiff compares the images for p in a (the running version) and b (the
// update), by layer digest.
func LayerDiff(a, b v1.ImageIndex, p v1.Platform) (Diff, error) {
	d := Diff{Platform: p.String()}
	ia, err := Image(a, p)
	if err != nil {
		return d, err
	}
	ib, err := Image(b, p)
	if err != nil {
		return d, err
	}
	la, err := layerStats(ia)
	if err != nil {
		return d, fmt.Errorf("build: image %s: %w", p, err)
	}
	lb, err := layerStats(ib)
	if err != nil {
		return d, fmt.Errorf("build: image %s: %w", p, err)
	}
	have := map[string]bool{}
	for _, l := range la {
		have[l.Digest] = true
	}
	for _, l := range lb {
		if have[l.Digest] {
			d.Shared = append(d.Shared, l)
		} else {
			d.Added = append(d.Added, l)
		}
	}
	return d, nil
}
