package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Base layer files. The flight user is nobody-like: uid and gid 65534, no
// home, no shell.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"flight:x:65534:65534:flight:/nonexistent:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"flight:x:65534:\n"
)

// entry is one file or directory of a layer.
type entry struct {
	name string // relative to /, no leading slash; directories end in /
	mode int64  // permission bits, with 0o1000 for sticky
	data []byte // file contents; nil for a directory
}

// baseLayer is the version-independent layer: users, groups and /tmp.
func baseLayer(mtime time.Time) (v1.Layer, error) {
	return newLayer([]entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "tmp/", mode: 0o1777},
	}, mtime)
}

// appLayer holds the binary at /flight.
func appLayer(bin []byte, mtime time.Time) (v1.Layer, error) {
	return newLayer([]entry{{name: strings.TrimPrefix(Entrypoint, "/"), mode: 0o755, data: bin}}, mtime)
}

// newLayer writes entries as a deterministic tar (sorted by name, USTAR,
// uid/gid 0, every time = mtime) compressed by a deterministic gzip (no name,
// no time in the header), and hashes both once.
func newLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.data == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	// The zero gzip.Header: no name, no comment, MTIME 0, OS 255 (unknown).
	// BestCompression would save 0.3% of the flight binary for 3x the time.
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	l := &layer{tar: raw.Bytes(), gz: gz.Bytes()}
	if l.diffID, _, err = v1.SHA256(bytes.NewReader(l.tar)); err != nil {
		return nil, err
	}
	if l.digest, _, err = v1.SHA256(bytes.NewReader(l.gz)); err != nil {
		return nil, err
	}
	return l, nil
}

// layer is a v1.Layer held in memory, compressed once: its digest is the
// hash of exactly the bytes that are pushed or written.
type layer struct {
	tar, gz        []byte
	digest, diffID v1.Hash
}

var _ v1.Layer = (*layer)(nil)

func (l *layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *layer) Size() (int64, error)                { return int64(len(l.gz)), nil }
func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *layer) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(l.gz)), nil }
func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}
