package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/rollout"
)

// Exit statuses of dronectl rollout, beyond 0 (every target updated), 1
// (another failure) and 2 (bad flags).
const (
	exitPartial  = 3 // completed, with drones failed or unreached (under -max-failed)
	exitAborted  = 4 // a wave went over -max-failed: stopped, or rolled back
	exitCanceled = 5 // an operator canceled it
)

// errExit carries an exit status other than 1.
type errExit struct {
	code int
	msg  string
}

func (e *errExit) Error() string { return e.msg }

// followEvery is how often dronectl rollout reads the rollout's record.
const followEvery = 500 * time.Millisecond

func rolloutCmd(ctx context.Context, args []string, s sys) error {
	if len(args) > 0 {
		switch args[0] {
		case "status", "pause", "resume", "cancel":
			return rolloutControl(ctx, args[0], args[1:], s)
		case "list":
			return rolloutList(ctx, args[1:], s)
		}
	}
	fs := flag.NewFlagSet("dronectl rollout", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: dronectl rollout [flags] IMAGE\n"+
			"       dronectl rollout status|pause|resume|cancel [-ground URL] [-o json] ID\n"+
			"       dronectl rollout list [-ground URL]\n")
		fs.PrintDefaults()
	}
	g := groundFlags(fs, s)
	var spec rollout.Spec
	drones := fs.String("drones", "", "targets: all, or drone ids d1,d2,... (in wave order)")
	fs.TextVar(&spec.Select, "select", rollout.Selector(nil), "targets: the drones whose labels hold every key=value,... (AGENT_LABELS)")
	fs.TextVar(&spec.Waves, "waves", rollout.DefaultWaves, "waves' cumulative sizes: drones (1) or percentages of the targets (10%), ending at 100%")
	fs.TextVar(&spec.MaxFailed, "max-failed", rollout.Threshold{}, "failed drones a wave tolerates: a count (3) or a percentage of its finished drones (5%)")
	fs.IntVar(&spec.MinDone, "min-done", 1, "finished drones of a wave before -max-failed is judged (a smaller wave: when it ends)")
	fs.TextVar(&spec.Timeout, "timeout", rollout.Duration(push.DefaultTimeout), "how long a drone that answered may take to its outcome")
	fs.TextVar(&spec.TTL, "ttl", rollout.Duration(push.DefaultTTL), "each command's lifetime: a drone out of reach that is not back by then is unreached")
	fs.TextVar(&spec.Soak, "soak", rollout.Duration(0), "wait between waves")
	onAbort := fs.String("on-abort", string(rollout.Stop), "when a wave goes over -max-failed: stop, or rollback every drone the rollout updated")
	fs.IntVar(&spec.Parallel, "parallel", 0, "drones with a command in flight at once (default: a whole wave)")
	fs.StringVar(&spec.App, "app", push.DefaultApp, "the app to update")
	fs.StringVar(&spec.Strategy, "strategy", "", "handoff, stop-start or start-then-stop (default: the image's label)")
	detach := fs.Bool("detach", false, "print the rollout's id and return; it runs on at the ground")
	var images []string
	if err := parseFlags(fs, args, &images); err != nil {
		return err
	}
	if len(images) != 1 {
		return usageErr("give one IMAGE: dronectl rollout [flags] flight:v2")
	}
	spec.Image, spec.OnAbort = images[0], rollout.OnAbort(*onAbort)
	switch *drones {
	case "":
	case "all":
		spec.All = true
	default:
		spec.Drones = strings.Split(*drones, ",")
	}
	if err := spec.Check(); err != nil {
		return specUsage(err)
	}
	c, err := g.client(s)
	if err != nil {
		return err
	}
	rec, err := c.StartRollout(ctx, spec)
	if err != nil {
		return apiErr(err)
	}
	if *detach {
		fmt.Fprintln(s.stdout, rec.ID)
		return nil
	}
	fmt.Fprintf(s.stderr, "dronectl rollout: %s started over %d drones; Ctrl-C stops following, not the rollout\n", rec.ID, len(rec.Drones))
	return followRollout(ctx, s, c, g, rec.ID)
}

// groundLink holds the flags that reach the ground station.
type groundLink struct {
	url, token, output string
}

func groundFlags(fs *flag.FlagSet, s sys) *groundLink {
	g := &groundLink{}
	fs.StringVar(&g.url, "ground", or(s.env("DRONECTL_GROUND"), "http://"+defaultGround+"/"), "the ground station (dronectl ground) that runs rollouts ($DRONECTL_GROUND)")
	fs.StringVar(&g.output, "o", "text", "output: text (progress lines) or json (the rollout's record at the end)")
	return g
}

const defaultGround = "127.0.0.1:8080"

func (g *groundLink) client(s sys) (*web.Client, error) {
	if g.output != "text" && g.output != "json" {
		return nil, usageErr("-o %q: give text or json", g.output)
	}
	g.token = s.env("DRONECTL_GROUND_TOKEN")
	return &web.Client{URL: g.url, Token: g.token}, nil
}

// followRollout prints the rollout's progress until it ends and returns how it
// ended.
func followRollout(ctx context.Context, s sys, c *web.Client, g *groundLink, id string) error {
	p := &rollout.Printer{W: s.stdout, Live: terminal(s.stdout)}
	show := p.Print
	if g.output == "json" {
		show = func(rollout.Record) {}
	}
	rec, err := c.FollowRollout(ctx, id, followEvery, show, func(err error) {
		fmt.Fprintf(s.stderr, "dronectl rollout: the ground does not answer (%v); asking again\n", err)
	})
	if err != nil {
		return apiErr(err)
	}
	if g.output == "json" {
		if err := printJSON(s, rec); err != nil {
			return err
		}
	}
	return ended(rec)
}

// ended is the error (the exit status) that says how rec ended; nil if it
// updated every target, or is still running.
func ended(rec rollout.Record) error {
	c := rec.Counts(-1)
	switch rec.State {
	case rollout.Completed:
		if rec.Succeeded() {
			return nil
		}
		return &errExit{exitPartial, fmt.Sprintf("rollout %s completed: %d of %d drones failed, %d unreached", rec.ID, c.Failed, c.Drones, c.Unreached)}
	case rollout.Aborted, rollout.RolledBk:
		return &errExit{exitAborted, fmt.Sprintf("rollout %s %s: %s", rec.ID, rec.State, rec.Reason)}
	case rollout.Canceled:
		return &errExit{exitCanceled, fmt.Sprintf("rollout %s canceled", rec.ID)}
	}
	return nil
}

// rolloutControl is dronectl rollout status|pause|resume|cancel ID.
func rolloutControl(ctx context.Context, what string, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl rollout "+what, flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	g := groundFlags(fs, s)
	var ids []string
	if err := parseFlags(fs, args, &ids); err != nil {
		return err
	}
	if len(ids) != 1 {
		return usageErr("give one rollout ID: dronectl rollout %s ID (dronectl rollout list shows them)", what)
	}
	c, err := g.client(s)
	if err != nil {
		return err
	}
	var rec rollout.Record
	if what == "status" {
		rec, err = c.Rollout(ctx, ids[0])
	} else {
		rec, err = c.ControlRollout(ctx, ids[0], what)
	}
	if err != nil {
		return apiErr(err)
	}
	if g.output == "json" {
		if err := printJSON(s, rec); err != nil {
			return err
		}
	} else {
		(&rollout.Printer{W: s.stdout}).Print(rec)
	}
	if what == "status" {
		return ended(rec)
	}
	return nil
}

// rolloutList is dronectl rollout list: one line per rollout.
func rolloutList(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl rollout list", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	g := groundFlags(fs, s)
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	c, err := g.client(s)
	if err != nil {
		return err
	}
	views, err := c.Rollouts(ctx)
	if err != nil {
		return apiErr(err)
	}
	if g.output == "json" {
		return printJSON(s, views)
	}
	for _, v := range views {
		fmt.Fprintf(s.stdout, "rollout=%s state=%s created=%s image=%s drones=%d done=%d failed=%d unreached=%d\n",
			v.ID, v.State, v.Created.UTC().Format(time.RFC3339), v.Image, v.Total.Drones, v.Total.Done, v.Total.Failed, v.Total.Unreached)
	}
	return nil
}

func printJSON(s sys, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.stdout, "%s\n", b)
	return err
}

// specUsage turns a *rollout.SpecError into a usage error naming its
// flag.
func specUsage(err error) error {
	var se *rollout.SpecError
	if errors.As(err, &se) {
		return usageErr("-%s: %s", strings.ReplaceAll(se.Field, "_", "-"), se.Msg)
	}
	return err
}

// apiErr makes a refused request (400) a usage error.
func apiErr(err error) error {
	var ae *web.APIError
	if errors.As(err, &ae) && ae.Status == 400 {
		return usageErr("%s", ae.Msg)
	}
	return err
}

// terminal reports whether w is a terminal (progress redraws in place).
func terminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
