package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/images/build"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no version", nil, nil, "-version is required"},
		{"empty version", []string{"-version", ""}, nil, "-version is required"},
		{"bad version", []string{"-version", "v 1"}, nil, `-version: build: version "v 1" is not a valid image tag`},
		{"unknown flag", []string{"-version", "v1", "-registry", "x"}, nil, "flag provided but not defined: -registry"},
		{"positional", []string{"-version", "v1", "v2"}, nil, `unexpected argument "v2"`},
		{"unknown platform", []string{"-version", "v1", "-platforms", "linux/amd64,windows/arm64"}, nil, `-platforms: build: unknown platform "windows/arm64": use one of`},
		{"empty platforms", []string{"-version", "v1", "-platforms", ""}, nil, "-platforms: build: no platforms"},
		{"bad schema", []string{"-version", "v1", "-schemas", "flight.state/1,,x"}, nil, `-schemas: build: state schema ""`},
		{"bad strategy", []string{"-version", "v1", "-strategy", "yolo"}, nil, `-strategy: build: unknown strategy "yolo"`},
		{"bad epoch env", []string{"-version", "v1"}, map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, `-source-date-epoch (or $SOURCE_DATE_EPOCH) "yesterday": want Unix seconds`},
		{"negative epoch", []string{"-version", "v1", "-source-date-epoch", "-5"}, nil, "want Unix seconds >= 0"},
		{"bad push ref", []string{"-version", "v1", "-push", "http://127.0.0.1:5000/flight:v1"}, nil, "-push: build: image reference"},
		{"insecure alone", []string{"-version", "v1", "-insecure"}, nil, "-insecure only applies to -push"},
		{"binary for two platforms", []string{"-version", "v1", "-binary", "f", "-platforms", "linux/amd64,linux/arm64"}, nil, "-binary writes one binary"},
		{"binary and push", []string{"-version", "v1", "-binary", "f", "-push", "127.0.0.1:5000/flight:v1"}, nil, "-binary writes one binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.args, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !errors.As(err, new(usageError)) {
				t.Fatalf("err = %v is not a usage error (exit 2)", err)
			}
		})
	}
	if _, err := parse([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: err = %v, want flag.ErrHelp", err)
	}
}

func TestParse(t *testing.T) {
	o, err := parse([]string{"-version", "v2", "-schemas", "flight.state/1, flight.state/2", "-platforms", "linux/arm64",
		"-push", "registry.example.com/flight:v2", "-insecure", "-layout", "out"}, env(map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %q %s %v %d %s %v %s", o.cfg.Version, o.cfg.Schemas, o.cfg.Strategy, o.cfg.Platforms, o.cfg.SourceDateEpoch, o.push, o.insecure, o.layout)
	want := `v2 ["flight.state/1" "flight.state/2"] handoff [linux/arm64] 1700000000 registry.example.com/flight:v2 true out`
	if got != want {
		t.Fatalf("parsed\n%s\nwant\n%s", got, want)
	}
}

// TestRunLayout runs the whole command with a stub compiler and pins the
// JSON line it prints (testdata/output.golden; -update rewrites it).
func TestRunLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	stub := func(_ context.Context, tg build.Target) error {
		return os.WriteFile(tg.Out, []byte("flight "+tg.Platform.String()+" "+tg.Version+"\n"), 0o755)
	}
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"-version", "v1", "-layout", dir}, env(nil), &stdout, io.Discard, stub); err != nil {
		t.Fatal(err)
	}
	if strings.Count(stdout.String(), "\n") != 1 {
		t.Fatalf("want one line, got %q", stdout.String())
	}
	var out output
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Layout != dir || len(out.Platforms) != 2 {
		t.Fatalf("output %+v", out)
	}
	idx, err := build.ReadLayout(dir, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != out.Index {
		t.Fatalf("layout holds %s, printed %s", d, out.Index)
	}
	line := strings.Replace(stdout.String(), dir, "DIR", 1)
	golden := filepath.Join("testdata", "output.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if line != string(want) {
		t.Fatalf("output\n%s\nwant (%s)\n%s", line, golden, want)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/output.golden")

// TestRunBinary: -binary builds the app alone, with the stamps an image's
// binary gets, for this machine's platform unless told another.
func TestRunBinary(t *testing.T) {
	out := filepath.Join(t.TempDir(), "flight")
	var got build.Target
	stub := func(_ context.Context, tg build.Target) error {
		got = tg
		return os.WriteFile(tg.Out, []byte("flight"), 0o755)
	}
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"-version", "v2", "-binary", out}, env(nil), &stdout, io.Discard, stub); err != nil {
		t.Fatal(err)
	}
	if got.Out != out || got.Platform.Architecture != runtime.GOARCH || got.Version != "v2" ||
		!strings.Contains(got.LDFlags, "app.Version=v2") || !strings.Contains(got.LDFlags, "app.Features=camera") {
		t.Fatalf("built %+v", got)
	}
	if stdout.Len() != 0 {
		t.Fatalf("printed %q; a binary build prints nothing", stdout.String())
	}
}
