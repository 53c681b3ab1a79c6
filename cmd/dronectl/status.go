package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/skyswap/skyswap/controller/push"
)

func statusCmd(ctx context.Context, args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl status", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	var l link
	l.register(fs, s, push.DefaultStatusTimeout)
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	cfg, err := l.config(s)
	if err != nil {
		return err
	}
	st, err := push.Status(ctx, cfg)
	if st.Drone != "" {
		// Also on a timeout: the state the broker kept is worth seeing.
		b, merr := json.Marshal(st)
		if merr != nil {
			return merr
		}
		fmt.Fprintf(s.stdout, "%s\n", b)
	}
	return flagError(err)
}
