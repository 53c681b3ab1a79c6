package main

import (
	"encoding/json"
	"flag"
	"fmt"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/push"
)

func sign(args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl sign", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	keyPath := fs.String("key", "", "private key file (from dronectl keygen)")
	keyID := fs.String("key-id", "", "key id the drone knows the key by (default: its KeyID, as keygen printed)")
	drone := fs.String("drone", "", "target drone id")
	kind := fs.String("kind", string(command.KindUpdate), "update, rollback or status")
	app := fs.String("app", "", "app name, e.g. flight (required for update and rollback)")
	image := fs.String("image", "", "image pinned by digest, NAME[:TAG]@sha256:HEX (required for update)")
	strategy := fs.String("strategy", "", "handoff, stop-start or start-then-stop (default: the image's label)")
	ttl := fs.Duration("ttl", push.DefaultTTL, "how long the command stays valid, at most "+command.DefaultMaxLifetime.String())
	id := fs.String("id", "", "idempotency key, [A-Za-z0-9._-]{1,64} (default: time and random)")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if *keyPath == "" {
		return usageErr("-key is required: the private key file from dronectl keygen")
	}
	if *drone == "" {
		return usageErr("-drone is required: the target drone's id")
	}
	if *ttl <= 0 {
		return usageErr("-ttl %s must be whole seconds between 1s and %s", *ttl, command.DefaultMaxLifetime)
	}
	priv, err := command.ReadPrivateKey(*keyPath)
	if err != nil {
		return fmt.Errorf("-key: %w", err)
	}
	c, err := push.Signer{Key: priv, KeyID: *keyID, TTL: *ttl, Now: s.now}.Sign(command.Command{
		ID:       *id,
		Kind:     command.Kind(*kind),
		Drone:    *drone,
		App:      *app,
		Image:    *image,
		Strategy: *strategy,
	})
	if err != nil {
		return flagError(err)
	}
	js, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.stdout, "%s\n", js)
	return err
}
