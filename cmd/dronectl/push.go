package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
)

func pushCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl push", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: dronectl push [flags] IMAGE\n  IMAGE: flight:v2 (in -registry), HOST:PORT/flight:v2, or pinned NAME@sha256:HEX\n")
		fs.PrintDefaults()
	}
	var l link
	var r release
	l.register(fs, s, push.DefaultTimeout)
	if err := r.register(fs, s); err != nil {
		return err
	}
	var images []string
	if err := parseFlags(fs, args, &images); err != nil {
		return err
	}
	switch len(images) {
	case 0:
		return usageErr("IMAGE is required: dronectl push [flags] IMAGE, e.g. dronectl push flight:v2")
	case 1:
	default:
		return usageErr("unexpected argument %q: push takes one IMAGE", images[1])
	}
	return follow(ctx, s, &l, &r, command.KindUpdate, images[0])
}

func rollbackCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl rollback", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var l link
	var r release
	l.register(fs, s, push.DefaultTimeout)
	if err := r.register(fs, s); err != nil {
		return err
	}
	image := fs.String("image", "", "the release to return to (flight:v1, HOST:PORT/flight:v1 or pinned); default: the previous committed one")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	return follow(ctx, s, &l, &r, command.KindRollback, *image)
}

// follow checks the flags, pins image (if any), sends the command and
// prints its events as they come.
func follow(ctx context.Context, s sys, l *link, r *release, kind command.Kind, image string) error {
	cfg, err := l.config(s)
	if err != nil {
		return err
	}
	cfg.App = r.app
	req := push.Request{Kind: kind, Image: image, Strategy: r.strategy, ID: r.id}
	if err := push.Check(cfg, req); err != nil {
		return flagError(err)
	}
	if image != "" {
		if req.Image, err = r.resolve(ctx, image); err != nil {
			return err
		}
	}
	var sent time.Time
	cfg.OnSent = func(_ command.Command, at time.Time) { sent = at }
	cfg.OnEvent = func(e report.Event) { fmt.Fprintln(s.stdout, push.Line(e, s.now().Sub(sent))) }
	_, err = push.Run(ctx, cfg, req)
	return flagError(err)
}
