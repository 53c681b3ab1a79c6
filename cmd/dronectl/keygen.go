package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyswap/skyswap/agent/command"
)

func keygen(args []string, s sys) error {
	fs := flag.NewFlagSet("dronectl keygen", flag.ContinueOnError)
	fs.SetOutput(s.stderr)
	out := fs.String("out", "", "directory for NAME.key and NAME.pub (created if missing)")
	name := fs.String("name", "ground", "file name of the key pair, without extension")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("-out is required: the directory to write the key pair into")
	}
	if *name == "" || *name != filepath.Base(*name) || strings.HasPrefix(*name, ".") {
		return usageErr("-name %q must be a plain file name, without directories", *name)
	}
	keyPath := filepath.Join(*out, *name+".key")
	pubPath := filepath.Join(*out, *name+".pub")
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists: keygen never overwrites a key; choose another -name or -out", p)
		}
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	pub, priv, err := command.GenerateKey()
	if err != nil {
		return err
	}
	if err := command.WritePrivateKey(keyPath, priv); err != nil {
		return err
	}
	if err := command.WritePublicKey(pubPath, pub); err != nil {
		return err
	}
	id := command.KeyID(pub)
	fmt.Fprintln(s.stdout, id)
	fmt.Fprintf(s.stderr, "wrote %s (secret: keep it on the ground) and %s\ntrust it on a drone with AGENT_TRUSTED_KEYS=%s=/path/to/%s.pub\n",
		keyPath, pubPath, id, *name)
	return nil
}
