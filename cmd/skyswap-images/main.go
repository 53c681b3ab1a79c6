// Command skyswap-images builds the flight app's multi-arch OCI image index
// (linux/amd64 and linux/arm64, two layers each: a shared base and the app)
// without Docker, reproducibly, and pushes it to a registry or writes it to
// an OCI image layout directory. See package images/build.
//
//	skyswap-images -version v1 [-schemas flight.state/1] [-strategy handoff]
//	    [-platforms linux/amd64,linux/arm64] [-push HOST/flight:v1 [-insecure]]
//	    [-layout DIR]
//	skyswap-images -version v1 -binary PATH [-platforms linux/arm64]
//	    writes the app binary alone, exactly as the image carries it, for
//	    one platform (default: this machine's): make build uses it.
//
// It prints one JSON line: the index digest and, per platform, the manifest
// and config digests and the layers' digests and sizes. Timestamps come from
// -source-date-epoch, whose default is $SOURCE_DATE_EPOCH (else 0). Run it
// inside the module (the go command builds the app from the current
// directory). Exit status 2 means bad flags, 1 a failed build or write.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skyswap/skyswap/handoff/strategy"
	"github.com/skyswap/skyswap/images/build"
)

// usageError is a bad command line.
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "skyswap-images:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "skyswap-images:", err)
		os.Exit(1)
	}
}

// options is the parsed command line.
type options struct {
	cfg      build.Config
	push     string // registry reference; "" = no push
	insecure bool
	layout   string // OCI layout directory; "" = none
	binary   string // write the binary alone here; "" = build the image
}

// parse reads the flags (and $SOURCE_DATE_EPOCH) and checks them before
// anything is built.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("skyswap-images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "flight app version to build, e.g. v1 (required; the layout tag)")
	schemas := fs.String("schemas", build.DefaultSchema, "comma-separated state schemas the image accepts")
	strategy := fs.String("strategy", string(strategy.Default), "update strategy label: "+strategy.List())
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch[/variant] to build")
	sde := fs.String("source-date-epoch", getenv("SOURCE_DATE_EPOCH"), "Unix seconds for every timestamp in the image (default $SOURCE_DATE_EPOCH, else 0)")
	fs.StringVar(&o.push, "push", "", "push to this reference, e.g. 127.0.0.1:5000/flight:v1 (loopback registries are plain HTTP)")
	fs.BoolVar(&o.insecure, "insecure", false, "with -push: plain HTTP to any registry")
	fs.StringVar(&o.layout, "layout", "", "write an OCI image layout into this directory, tagged by -version")
	fs.StringVar(&o.binary, "binary", "", "write the app binary for one platform (-platforms; default this machine's) to this path instead of an image")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected argument %q: every option is a flag, e.g. -version v1", fs.Arg(0))}
	}
	if *version == "" {
		return o, usageError{errors.New("-version is required: pass the flight app version to build, e.g. -version v1")}
	}
	o.cfg = build.Config{Version: *version, Strategy: *strategy, Schemas: split(*schemas), Platforms: []v1.Platform{}}
	if o.binary != "" && !flagSet(fs, "platforms") {
		*platforms = "linux/" + runtime.GOARCH
	}
	for _, s := range split(*platforms) {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return o, usageError{fmt.Errorf("-platforms %q: %w", s, err)}
		}
		o.cfg.Platforms = append(o.cfg.Platforms, *p)
	}
	if *sde != "" {
		n, err := strconv.ParseInt(*sde, 10, 64)
		if err != nil || n < 0 {
			return o, usageError{fmt.Errorf("-source-date-epoch (or $SOURCE_DATE_EPOCH) %q: want Unix seconds >= 0, e.g. $(git log -1 --format=%%ct)", *sde)}
		}
		o.cfg.SourceDateEpoch = n
	}
	// Check each flag on its own so the error names it.
	checks := []struct {
		flag string
		cfg  build.Config
	}{
		{"-version", build.Config{Version: o.cfg.Version}},
		{"-schemas", build.Config{Version: "v", Schemas: o.cfg.Schemas}},
		{"-strategy", build.Config{Version: "v", Strategy: o.cfg.Strategy}},
		{"-platforms", build.Config{Version: "v", Platforms: o.cfg.Platforms}},
	}
	for _, c := range checks {
		if err := c.cfg.Validate(); err != nil {
			return o, usageError{fmt.Errorf("%s: %w", c.flag, err)}
		}
	}
	if o.binary != "" && (len(o.cfg.Platforms) != 1 || o.push != "" || o.layout != "") {
		return o, usageError{errors.New("-binary writes one binary: give at most one platform, and no -push or -layout")}
	}
	if o.push != "" {
		if _, err := build.ParseReference(o.push, o.insecure); err != nil {
			return o, usageError{fmt.Errorf("-push: %w", err)}
		}
	} else if o.insecure {
		return o, usageError{errors.New("-insecure only applies to -push: add -push HOST/flight:TAG or drop -insecure")}
	}
	return o, nil
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// split splits a comma list, dropping spaces around items; "" is nil.
func split(s string) []string {
	if strings.TrimSpace(s) == "" {
		return []string{}
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// output is the JSON line printed on success.
type output struct {
	Version string `json:"version"`
	build.Summary
	Pushed string `json:"pushed,omitempty"` // reference pinned by digest
	Layout string `json:"layout,omitempty"` // layout directory
}

// run parses args, builds, stores and prints. buildFn nil = the go command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, buildFn build.BuildFunc) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	o.cfg.Build = buildFn
	if o.binary != "" {
		return build.Binary(ctx, o.cfg, o.cfg.Platforms[0], o.binary)
	}
	idx, err := build.Flight(ctx, o.cfg)
	if err != nil {
		return err
	}
	out := output{Version: o.cfg.Version}
	if out.Summary, err = build.Summarize(idx); err != nil {
		return err
	}
	if o.push != "" {
		d, err := build.Push(ctx, idx, o.push, build.PushConfig{Insecure: o.insecure})
		if err != nil {
			return err
		}
		r, err := build.ParseReference(o.push, o.insecure)
		if err != nil {
			return err
		}
		out.Pushed = r.Context().Digest(d.String()).String()
	}
	if o.layout != "" {
		if err := build.WriteLayout(o.layout, o.cfg.Version, idx); err != nil {
			return err
		}
		out.Layout = o.layout
	}
	return json.NewEncoder(stdout).Encode(out)
}
