package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 500_000_000, time.UTC)

// dronectl runs dronectl at the fixed time now, with an empty environment.
func dronectl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return dronectlEnv(t, func() time.Time { return now }, nil, args...)
}

// dronectlEnv runs dronectl with a clock and an environment.
func dronectlEnv(t *testing.T, clock func() time.Time, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = run(ctx, args, sys{stdout: &o, stderr: &e, now: clock, getenv: func(k string) string { return env[k] }})
	return code, o.String(), e.String()
}

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestKeygenSignVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, out, errOut := dronectl(t, "keygen", "-out", dir)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	pub, err := command.ReadPublicKey(filepath.Join(dir, "ground.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if id != command.KeyID(pub) {
		t.Errorf("keygen printed %q, want the key id %s", id, command.KeyID(pub))
	}
	st, err := os.Stat(filepath.Join(dir, "ground.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ground.key: %v, mode %v", err, st.Mode().Perm())
	}
	if code, _, errOut := dronectl(t, "keygen", "-out", dir); code != 1 || !strings.Contains(errOut, "never overwrites") {
		t.Errorf("second keygen: exit %d: %s", code, errOut)
	}

	keys, err := command.LoadPublicKeys(id + "=" + filepath.Join(dir, "ground.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v := command.Verifier{Keys: keys, Now: func() time.Time { return now.Add(time.Minute) }, Drone: "d1"}

	key := filepath.Join(dir, "ground.key")
	code, out, errOut = dronectl(t, "sign", "-key", key, "-drone", "d1", "-kind", "update", "-app", "flight",
		"-image", "registry.local/flight:v2@"+digest, "-strategy", "handoff", "-ttl", "90s", "-id", "push-1")
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, errOut)
	}
	c, err := command.Parse([]byte(out))
	if err != nil {
		t.Fatalf("Parse(%s): %v", out, err)
	}
	if err := v.Verify(c); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.ID != "push-1" || c.Strategy != "handoff" || !c.Issued.Equal(now.Truncate(time.Second)) ||
		c.Expires.Sub(c.Issued) != 90*time.Second || c.KeyID != id {
		t.Errorf("signed command %+v", c)
	}

	// Defaults: generated id, 2m, kind update; status needs no app.
	code, out, errOut = dronectl(t, "sign", "-key", key, "-drone", "d1", "-kind", "status")
	if code != 0 {
		t.Fatalf("sign status: exit %d: %s", code, errOut)
	}
	c, err = command.Parse([]byte(out))
	if err != nil || v.Verify(c) != nil {
		t.Fatalf("status command %s: %v %v", out, err, v.Verify(c))
	}
	if !strings.HasPrefix(c.ID, "20250601T120000Z-") || c.Expires.Sub(c.Issued) != 2*time.Minute {
		t.Errorf("default id %q, lifetime %s", c.ID, c.Expires.Sub(c.Issued))
	}

	// -key-id names the key as the drone lists it.
	code, out, _ = dronectl(t, "sign", "-key", key, "-key-id", "ground", "-drone", "d1", "-kind", "status")
	c, err = command.Parse([]byte(out))
	v.Keys = map[string]ed25519.PublicKey{"ground": pub}
	if code != 0 || err != nil || v.Verify(c) != nil {
		t.Errorf("-key-id: exit %d, %v", code, err)
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := dronectl(t, "keygen", "-out", dir); code != 0 {
		t.Fatal(errOut)
	}
	key := filepath.Join(dir, "ground.key")
	sign := func(extra ...string) []string {
		return append([]string{"sign", "-key", key, "-drone", "d1", "-app", "flight", "-image", "flight@" + digest}, extra...)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}{
		{"no command", nil, 2, "usage"},
		{"unknown command", []string{"fly"}, 2, `unknown command "fly"`},
		{"keygen without -out", []string{"keygen"}, 2, "-out is required"},
		{"keygen bad -name", []string{"keygen", "-out", dir, "-name", "../x"}, 2, "-name"},
		{"keygen undefined flag", []string{"keygen", "-o", dir}, 2, "-o"},
		{"sign without -key", []string{"sign", "-drone", "d1"}, 2, "-key is required"},
		{"sign without -drone", []string{"sign", "-key", key}, 2, "-drone is required"},
		{"tag-only image", sign("-image", "flight:v2"), 2, "-image: \"flight:v2\" is not pinned by digest: resolve it to a digest"},
		{"bad kind", sign("-kind", "reboot"), 2, "-kind:"},
		{"bad strategy", sign("-strategy", "fast"), 2, "-strategy:"},
		{"bad id", sign("-id", "a b"), 2, "-id:"},
		{"bad drone", sign("-drone", "d1/x"), 2, "-drone:"},
		{"update without app", sign("-app", ""), 2, "-app:"},
		{"bad key id", sign("-key-id", "a b"), 2, "-key-id:"},
		{"ttl too long", sign("-ttl", "11m"), 2, "-ttl"},
		{"ttl negative", sign("-ttl", "-1s"), 2, "-ttl"},
		{"ttl fraction", sign("-ttl", "1.5s"), 2, "-ttl"},
		{"ttl not a duration", sign("-ttl", "soon"), 2, "-ttl"},
		{"stray argument", sign("extra"), 2, `unexpected argument "extra"`},
		{"missing key file", []string{"sign", "-key", filepath.Join(dir, "nope"), "-drone", "d1"}, 1, "-key:"},
		{"help", []string{"sign", "-h"}, 0, "-image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := dronectl(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut, tt.code, tt.msg)
			}
			if code != 0 && out != "" {
				t.Errorf("a failure printed %q on stdout", out)
			}
		})
	}
}

func TestSignRefusesLooseKeyFile(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := dronectl(t, "keygen", "-out", dir); code != 0 {
		t.Fatal(errOut)
	}
	key := filepath.Join(dir, "ground.key")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := dronectl(t, "sign", "-key", key, "-drone", "d1", "-kind", "status")
	if code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("exit %d, %q", code, errOut)
	}
}
