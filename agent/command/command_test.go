package command

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/handoff/strategy"
)

var update = flag.Bool("update", false, "rewrite golden files (never for signed.golden.json unless the canonical form changes with a new Domain)")

// testKey is the fixed key the golden files are signed with.
func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	seed := sha256.Sum256([]byte("skyswap command test key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return priv.Public().(ed25519.PublicKey), priv
}

// otherKey is a second key, trusted or not depending on the test.
func otherKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	seed := sha256.Sum256([]byte("skyswap command other key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return priv.Public().(ed25519.PublicKey), priv
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// baseCommand is the fixed unsigned command of the golden files.
func baseCommand() Command {
	return Command{
		ID:       "golden-1",
		Kind:     KindUpdate,
		Drone:    "drone-7",
		App:      "flight",
		Image:    "registry.local:5000/skyswap/flight:v2@" + testDigest,
		Strategy: string(strategy.Handoff),
		Issued:   t0,
		Expires:  t0.Add(2 * time.Minute),
	}
}

func mustSign(t testing.TB, c Command, priv ed25519.PrivateKey) Command {
	t.Helper()
	s, err := Sign(c, KeyID(priv.Public().(ed25519.PublicKey)), priv)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return s
}

func testVerifier(t testing.TB, now time.Time) Verifier {
	pub, _ := testKey(t)
	opub, _ := otherKey(t)
	return Verifier{
		Keys:  map[string]ed25519.PublicKey{KeyID(pub): pub, "other": opub},
		Now:   func() time.Time { return now },
		Drone: "drone-7",
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot  %q\nwant %q", name, got, want)
	}
}

// The canonical form as the package doc defines it, written out by hand,
// independent of the code that produces it.
const wantCanonical = "skyswap-cmd-v1\n" +
	`{"id":"golden-1","kind":"update","drone":"drone-7","app":"flight",` +
	`"image":"registry.local:5000/skyswap/flight:v2@` + testDigest + `",` +
	`"strategy":"handoff","issued":"2025-06-01T12:00:00Z","expires":"2025-06-01T12:02:00Z",` +
	`"key_id":"KEYID"}`

func TestGolden(t *testing.T) {
	pub, priv := testKey(t)
	signed := mustSign(t, baseCommand(), priv)
	canon, err := signed.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(wantCanonical, "KEYID", KeyID(pub), 1); string(canon) != want {
		t.Errorf("canonical bytes\ngot  %q\nwant %q", canon, want)
	}
	golden(t, "canonical.golden", canon)
	js, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "signed.golden.json", append(js, '\n'))
}

// TestGoldenVerifies is the compatibility promise: what an earlier version
// signed (testdata/signed.golden.json) still parses and verifies, and its
// canonical bytes are still testdata/canonical.golden.
func TestGoldenVerifies(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "signed.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := testVerifier(t, t0.Add(time.Minute)).Verify(c); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	canon, err := c.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "canonical.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canon, want) {
		t.Errorf("canonical bytes of the golden command\ngot  %q\nwant %q", canon, want)
	}
	pub, _ := testKey(t)
	if !ed25519.Verify(pub, want, c.Sig) {
		t.Error("the golden signature does not cover canonical.golden")
	}
}

func TestVerify(t *testing.T) {
	_, priv := testKey(t)
	_, opriv := otherKey(t)
	_, stranger, _ := ed25519.GenerateKey(nil)
	signed := mustSign(t, baseCommand(), priv)
	signWith := func(mod func(*Command)) func(*testing.T) Command {
		return func(t *testing.T) Command {
			c := baseCommand()
			mod(&c)
			return mustSign(t, c, priv)
		}
	}
	tamper := func(mod func(*Command)) func(*testing.T) Command {
		return func(*testing.T) Command {
			c := signed
			c.Sig = bytes.Clone(signed.Sig)
			mod(&c)
			return c
		}
	}
	now := t0.Add(time.Minute)
	tests := []struct {
		name string
		cmd  func(*testing.T) Command
		v    func(*Verifier)
		want error
		msg  string // substring of the error
	}{
		{name: "happy path", cmd: tamper(func(*Command) {})},
		{name: "status without app", cmd: signWith(func(c *Command) {
			c.Kind, c.App, c.Image, c.Strategy = KindStatus, "", "", ""
		})},
		{name: "rollback without image", cmd: signWith(func(c *Command) { c.Kind, c.Image = KindRollback, "" })},
		{name: "rollback to an image", cmd: signWith(func(c *Command) { c.Kind = KindRollback })},
		{name: "image without tag", cmd: signWith(func(c *Command) { c.Image = "flight@" + testDigest })},
		{name: "no strategy", cmd: signWith(func(c *Command) { c.Strategy = "" })},
		{name: "signed by the other trusted key", cmd: func(t *testing.T) Command {
			c, err := Sign(baseCommand(), "other", opriv)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{name: "just issued, drone clock behind within skew", cmd: tamper(func(*Command) {}),
			v: func(v *Verifier) { v.Now = func() time.Time { return t0.Add(-30 * time.Second) } }},
		{name: "last second", cmd: tamper(func(*Command) {}),
			v: func(v *Verifier) { v.Now = func() time.Time { return t0.Add(2*time.Minute - time.Nanosecond) } }},
		{name: "long lifetime allowed by the verifier", cmd: signWith(func(c *Command) { c.Expires = c.Issued.Add(time.Hour) }),
			v: func(v *Verifier) { v.MaxLifetime = time.Hour }},
		{name: "lifetime exactly the default limit", cmd: signWith(func(c *Command) { c.Expires = c.Issued.Add(DefaultMaxLifetime) })},

		{name: "unsigned", cmd: tamper(func(c *Command) { c.Sig = nil }), want: ErrUnsigned, msg: "AGENT_TRUSTED_KEYS"},
		{name: "unknown key", cmd: func(t *testing.T) Command {
			c, err := Sign(baseCommand(), "stranger", stranger)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, want: ErrUnknownKey, msg: "re-sign with a key listed in AGENT_TRUSTED_KEYS"},
		{name: "no keys at all", cmd: tamper(func(*Command) {}), v: func(v *Verifier) { v.Keys = nil }, want: ErrUnknownKey},
		{name: "wrong key under a trusted id", cmd: func(t *testing.T) Command {
			pub, _ := testKey(t)
			c, err := Sign(baseCommand(), KeyID(pub), opriv)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, want: ErrBadSignature, msg: "re-sign"},
		{name: "key_id switched to another trusted key", cmd: tamper(func(c *Command) { c.KeyID = "other" }), want: ErrBadSignature},
		{name: "tampered id", cmd: tamper(func(c *Command) { c.ID = "golden-2" }), want: ErrBadSignature},
		{name: "tampered kind", cmd: tamper(func(c *Command) { c.Kind = KindRollback }), want: ErrBadSignature},
		{name: "tampered drone", cmd: tamper(func(c *Command) { c.Drone = "drone-8" }), want: ErrBadSignature},
		{name: "tampered app", cmd: tamper(func(c *Command) { c.App = "camera" }), want: ErrBadSignature},
		{name: "tampered image", cmd: tamper(func(c *Command) { c.Image = strings.Replace(c.Image, "0123", "3210", 1) }), want: ErrBadSignature},
		{name: "tampered strategy", cmd: tamper(func(c *Command) { c.Strategy = string(strategy.StopStart) }), want: ErrBadSignature},
		{name: "tampered issued", cmd: tamper(func(c *Command) { c.Issued = c.Issued.Add(time.Second) }), want: ErrBadSignature},
		{name: "tampered expires", cmd: tamper(func(c *Command) { c.Expires = c.Expires.Add(time.Second) }), want: ErrBadSignature},
		{name: "flipped signature bit", cmd: tamper(func(c *Command) { c.Sig[7] ^= 1 }), want: ErrBadSignature},
		{name: "short signature", cmd: tamper(func(c *Command) { c.Sig = c.Sig[:63] }), want: ErrBadSignature},
		{name: "expired", cmd: tamper(func(*Command) {}),
			v:    func(v *Verifier) { v.Now = func() time.Time { return t0.Add(2 * time.Minute) } },
			want: ErrExpired, msg: "sign a new command"},
		{name: "long expired", cmd: tamper(func(*Command) {}),
			v:    func(v *Verifier) { v.Now = func() time.Time { return t0.Add(24 * time.Hour) } },
			want: ErrExpired},
		{name: "not yet valid beyond skew", cmd: tamper(func(*Command) {}),
			v:    func(v *Verifier) { v.Now = func() time.Time { return t0.Add(-31 * time.Second) } },
			want: ErrNotYetValid, msg: "clocks differ by more than 30s: check NTP"},
		{name: "not yet valid beyond a custom skew", cmd: tamper(func(*Command) {}),
			v: func(v *Verifier) {
				v.MaxSkew = 5 * time.Second
				v.Now = func() time.Time { return t0.Add(-6 * time.Second) }
			},
			want: ErrNotYetValid, msg: "more than 5s"},
		{name: "lifetime too long", cmd: signWith(func(c *Command) { c.Expires = c.Issued.Add(DefaultMaxLifetime + time.Second) }),
			want: ErrMalformed, msg: "shorter -ttl"},
		{name: "wrong drone", cmd: signWith(func(c *Command) { c.Drone = "drone-8" }), want: ErrWrongDrone, msg: "fleet/drone-8/cmd"},
		{name: "verifier without drone id", cmd: tamper(func(*Command) {}), v: func(v *Verifier) { v.Drone = "" }, want: ErrWrongDrone},
		{name: "unknown kind", cmd: tamper(func(c *Command) { c.Kind = "reboot" }), want: ErrMalformed, msg: "update, rollback or status"},
		{name: "no kind", cmd: tamper(func(c *Command) { c.Kind = "" }), want: ErrMalformed},
		{name: "tag-only image", cmd: tamper(func(c *Command) { c.Image = "registry.local:5000/skyswap/flight:v2" }),
			want: ErrMalformed, msg: "resolve it to a digest"},
		{name: "uppercase digest", cmd: tamper(func(c *Command) { c.Image = "flight@" + strings.ToUpper(testDigest) }), want: ErrMalformed},
		{name: "bad id chars", cmd: tamper(func(c *Command) { c.ID = "a/b" }), want: ErrMalformed, msg: "id"},
		{name: "id with space", cmd: tamper(func(c *Command) { c.ID = "a b" }), want: ErrMalformed},
		{name: "id with quote", cmd: tamper(func(c *Command) { c.ID = `a"b` }), want: ErrMalformed},
		{name: "id too long", cmd: tamper(func(c *Command) { c.ID = strings.Repeat("a", 65) }), want: ErrMalformed},
		{name: "no id", cmd: tamper(func(c *Command) { c.ID = "" }), want: ErrMalformed},
		{name: "drone with slash", cmd: tamper(func(c *Command) { c.Drone = "drone-7/cmd" }), want: ErrMalformed},
		{name: "drone wildcard", cmd: tamper(func(c *Command) { c.Drone = "+" }), want: ErrMalformed},
		{name: "app dot-dot", cmd: tamper(func(c *Command) { c.App = ".." }), want: ErrMalformed},
		{name: "update without app", cmd: tamper(func(c *Command) { c.App = "" }), want: ErrMalformed},
		{name: "update without image", cmd: tamper(func(c *Command) { c.Image = "" }), want: ErrMalformed},
		{name: "status with image", cmd: tamper(func(c *Command) { c.Kind = KindStatus }), want: ErrMalformed},
		{name: "unknown strategy", cmd: tamper(func(c *Command) { c.Strategy = "yolo" }), want: ErrMalformed},
		{name: "no issued", cmd: tamper(func(c *Command) { c.Issued = time.Time{} }), want: ErrMalformed},
		{name: "no expires", cmd: tamper(func(c *Command) { c.Expires = time.Time{} }), want: ErrMalformed},
		{name: "expires before issued", cmd: tamper(func(c *Command) { c.Expires = c.Issued.Add(-time.Second) }), want: ErrMalformed},
		{name: "sub-second issued", cmd: tamper(func(c *Command) { c.Issued = c.Issued.Add(time.Millisecond) }), want: ErrMalformed},
		{name: "no key_id", cmd: tamper(func(c *Command) { c.KeyID = "" }), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVerifier(t, now)
			if tt.v != nil {
				tt.v(&v)
			}
			err := v.Verify(tt.cmd(t))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			for _, other := range []error{ErrUnsigned, ErrUnknownKey, ErrBadSignature, ErrExpired,
				ErrNotYetValid, ErrWrongDrone, ErrMalformed, ErrTooLarge, ErrReplayed, ErrBadKey} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %q also wraps %v", err, other)
				}
			}
		})
	}
}

func TestFieldErrorNamesField(t *testing.T) {
	_, priv := testKey(t)
	for field, mod := range map[string]func(*Command){
		"id":       func(c *Command) { c.ID = "no way" },
		"kind":     func(c *Command) { c.Kind = "reboot" },
		"drone":    func(c *Command) { c.Drone = "" },
		"app":      func(c *Command) { c.App = "-x" },
		"image":    func(c *Command) { c.Image = "flight:v2" },
		"strategy": func(c *Command) { c.Strategy = "x" },
		"issued":   func(c *Command) { c.Issued = time.Time{} },
		"expires":  func(c *Command) { c.Expires = c.Issued },
	} {
		c := baseCommand()
		mod(&c)
		_, err := Sign(c, "k", priv)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Sign = %v, want a *FieldError for %s", field, err, field)
		}
	}
	if _, err := Sign(baseCommand(), "", priv); err == nil {
		t.Error("Sign with an empty key id succeeded")
	}
	if _, err := Sign(baseCommand(), "k", priv[:10]); !errors.Is(err, ErrBadKey) {
		t.Errorf("Sign with a short key = %v, want ErrBadKey", err)
	}
}

func TestSignNormalisesTimes(t *testing.T) {
	_, priv := testKey(t)
	c := baseCommand()
	loc := time.FixedZone("CEST", 2*3600)
	c.Issued = t0.In(loc).Add(900 * time.Millisecond)
	c.Expires = t0.Add(2 * time.Minute).In(loc).Add(300 * time.Millisecond)
	s := mustSign(t, c, priv)
	if !s.Issued.Equal(t0) || !s.Expires.Equal(t0.Add(2*time.Minute)) || s.Issued.Location() != time.UTC {
		t.Errorf("signed times %v %v, want %v and 2m later in UTC", s.Issued, s.Expires, t0)
	}
	if c.Sig != nil {
		t.Error("Sign changed its argument")
	}
	if err := testVerifier(t, t0.Add(time.Minute)).Verify(s); err != nil {
		t.Error(err)
	}
}

func TestCheckImage(t *testing.T) {
	hex := testDigest[len("sha256:"):]
	tests := []struct {
		ref string
		ok  bool
		msg string
	}{
		{ref: "flight@" + testDigest, ok: true},
		{ref: "flight:v2@" + testDigest, ok: true},
		{ref: "registry.local:5000/skyswap/flight:v2@" + testDigest, ok: true},
		{ref: "localhost/a/b_c__d-e.f---g@" + testDigest, ok: true},
		{ref: "[::1]:5000/flight:V2.0_rc-1@" + testDigest, ok: true},
		{ref: "Registry.Example.COM/flight@" + testDigest, ok: true},
		{ref: "flight:v2", msg: "not pinned by digest: resolve it to a digest"},
		{ref: "registry.local:5000/skyswap/flight", msg: "resolve it to a digest"},
		{ref: "flight@sha256:" + strings.ToUpper(hex), msg: "64 lowercase hex"},
		{ref: "flight@sha256:" + hex[:63], msg: "64 lowercase hex"},
		{ref: "flight@sha512:" + hex + hex, msg: "64 lowercase hex"},
		{ref: "flight:v2@", msg: "64 lowercase hex"},
		{ref: "Flight@" + testDigest, msg: "not an OCI reference"},
		{ref: "flight:-v2@" + testDigest, msg: "not an OCI reference"},
		{ref: "flight//x@" + testDigest, msg: "not an OCI reference"},
		{ref: "/flight@" + testDigest, msg: "not an OCI reference"},
		{ref: "flight@" + testDigest + "\n", msg: "64 lowercase hex"},
		{ref: "", msg: "not an OCI reference"},
		{ref: strings.Repeat("a", 256) + "@" + testDigest, msg: "limit 255"},
		{ref: strings.Repeat("a/", 300) + "a@" + testDigest, msg: "limit 512"},
	}
	for _, tt := range tests {
		err := CheckImage(tt.ref)
		if tt.ok {
			if err != nil {
				t.Errorf("CheckImage(%.60q) = %v", tt.ref, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "image" || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("CheckImage(%.60q) = %v, want an image error saying %q", tt.ref, err, tt.msg)
		}
	}
}

func TestParse(t *testing.T) {
	_, priv := testKey(t)
	good, err := json.Marshal(mustSign(t, baseCommand(), priv))
	if err != nil {
		t.Fatal(err)
	}
	sig := mustSign(t, baseCommand(), priv).Sig
	// with replaces the value of key in the good payload (or appends).
	with := func(kv string) []byte {
		return []byte(strings.Replace(string(good), `{`, `{`+kv+`,`, 1))
	}
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{name: "good", data: good},
		{name: "whitespace around", data: append(append([]byte(" \n\t"), good...), " \r\n"...)},
		{name: "padded to exactly MaxSize", data: append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxSize-len(good))...)},
		{name: "empty optional fields present", data: []byte(`{"id":"x","kind":"status","drone":"d","app":"","image":"","strategy":"",` +
			`"issued":"2025-06-01T12:00:00Z","expires":"2025-06-01T12:01:00Z","key_id":"k","sig":""}`)},
		{name: "unicode escapes decode", data: []byte(`{"id":"\u0061"}`)},

		{name: "oversized", data: append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxSize-len(good)+1)...), want: ErrTooLarge},
		{name: "oversized garbage", data: bytes.Repeat([]byte("A"), 1<<20), want: ErrTooLarge},
		{name: "empty", data: nil, want: ErrMalformed, msg: "ends early"},
		{name: "not JSON", data: []byte("update flight"), want: ErrMalformed},
		{name: "truncated", data: good[:len(good)-1], want: ErrMalformed, msg: "ends early"},
		{name: "array", data: []byte(`[` + string(good) + `]`), want: ErrMalformed, msg: "one JSON object"},
		{name: "string", data: []byte(`"x"`), want: ErrMalformed},
		{name: "null", data: []byte(`null`), want: ErrMalformed},
		{name: "two objects", data: append(bytes.Clone(good), good...), want: ErrMalformed, msg: "data after"},
		{name: "trailing garbage", data: append(bytes.Clone(good), "x"...), want: ErrMalformed},
		{name: "unknown field", data: with(`"reboot":"now"`), want: ErrMalformed, msg: `unknown field "reboot"`},
		{name: "key in other case", data: with(`"ID":"x"`), want: ErrMalformed, msg: "unknown field"},
		{name: "duplicate key", data: with(`"drone":"drone-8"`), want: ErrMalformed, msg: "twice"},
		{name: "number value", data: []byte(`{"id":1}`), want: ErrMalformed, msg: "JSON string"},
		{name: "null value", data: []byte(`{"id":null}`), want: ErrMalformed, msg: "JSON string"},
		{name: "object value", data: []byte(`{"id":{"a":"b"}}`), want: ErrMalformed, msg: "JSON string"},
		{name: "unknown field with object value", data: []byte(`{"x":{"a":[1,2]}}`), want: ErrMalformed, msg: "unknown field"},
		{name: "time with offset", data: []byte(`{"issued":"2025-06-01T14:00:00+02:00"}`), want: ErrMalformed, msg: "2006-01-02T15:04:05Z"},
		{name: "time with fraction", data: []byte(`{"issued":"2025-06-01T12:00:00.5Z"}`), want: ErrMalformed},
		{name: "time lowercase z", data: []byte(`{"expires":"2025-06-01T12:00:00z"}`), want: ErrMalformed},
		{name: "time not a time", data: []byte(`{"expires":"tomorrow"}`), want: ErrMalformed},
		{name: "sig not base64", data: []byte(`{"sig":"!!!"}`), want: ErrMalformed, msg: "base64"},
		{name: "sig unpadded", data: []byte(`{"sig":"` + strings.TrimRight(b64(sig), "=") + `"}`), want: ErrMalformed, msg: "base64"},
		{name: "sig with newline escape", data: []byte(`{"sig":"` + b64(sig)[:10] + `\n` + b64(sig)[10:] + `"}`), want: ErrMalformed, msg: "base64"},
		{name: "sig url alphabet", data: []byte(`{"sig":"` + strings.NewReplacer("+", "-", "/", "_").Replace(b64(bytes.Repeat([]byte{0xfb}, 64))) + `"}`), want: ErrMalformed},
		{name: "sig wrong length", data: []byte(`{"sig":"` + b64(sig[:32]) + `"}`), want: ErrMalformed, msg: "64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Parse = %v, want %v saying %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestParseVerify runs whole payloads through Parse and Verify, as the
// agent does.
func TestParseVerify(t *testing.T) {
	_, priv := testKey(t)
	signed := mustSign(t, baseCommand(), priv)
	js, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	v := testVerifier(t, t0.Add(time.Minute))
	c, err := Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(c); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if !c.Issued.Equal(signed.Issued) || !c.Expires.Equal(signed.Expires) || !bytes.Equal(c.Sig, signed.Sig) || c.Image != signed.Image {
		t.Errorf("round trip changed the command:\n%+v\n%+v", c, signed)
	}
	// Raw JSON edits after signing.
	for _, edit := range [][2]string{
		{`"drone":"drone-7"`, `"drone":"drone-9"`},
		{`"strategy":"handoff",`, ``},
		{`"app":"flight"`, `"app":"flight2"`},
		{`12:02:00Z`, `12:09:00Z`},
	} {
		tampered := strings.Replace(string(js), edit[0], edit[1], 1)
		if tampered == string(js) {
			t.Fatalf("edit %q did not apply to %s", edit, js)
		}
		c, err := Parse([]byte(tampered))
		if err != nil {
			t.Fatalf("%s: Parse: %v", edit, err)
		}
		if err := v.Verify(c); !errors.Is(err, ErrBadSignature) {
			t.Errorf("edit %q: Verify = %v, want ErrBadSignature", edit, err)
		}
	}
	// json.Unmarshal is as strict as Parse.
	var u Command
	if err := json.Unmarshal([]byte(strings.Replace(string(js), `{`, `{"x":"y",`, 1)), &u); !errors.Is(err, ErrMalformed) {
		t.Errorf("json.Unmarshal with an unknown field = %v, want ErrMalformed", err)
	}
	if err := json.Unmarshal(js, &u); err != nil || v.Verify(u) != nil {
		t.Errorf("json.Unmarshal: %v", err)
	}
}

func TestMarshalOmitsEmptyOptional(t *testing.T) {
	c := Command{ID: "s1", Kind: KindStatus, Drone: "d1", Issued: t0, Expires: t0.Add(time.Minute), KeyID: "k"}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"s1","kind":"status","drone":"d1","issued":"2025-06-01T12:00:00Z","expires":"2025-06-01T12:01:00Z","key_id":"k"}`
	if string(js) != want {
		t.Errorf("got  %s\nwant %s", js, want)
	}
}

// TestDroneIsOneTopicSegment: a drone id with a '.' could not have its
// MQTT topics (broker.CheckDrone), so no command may address one.
func TestDroneIsOneTopicSegment(t *testing.T) {
	_, priv := testKey(t)
	for _, d := range []string{"d.1", "drone.7", "a."} {
		c := baseCommand()
		c.Drone = d
		var fe *FieldError
		if _, err := Sign(c, "k", priv); !errors.As(err, &fe) || fe.Field != "drone" {
			t.Errorf("drone %q: Sign = %v, want a *FieldError for drone", d, err)
		}
	}
	for _, d := range []string{"d1", "drone_7", "Drone-7"} {
		c := baseCommand()
		c.Drone = d
		if _, err := Sign(c, "k", priv); err != nil {
			t.Errorf("drone %q: %v", d, err)
		}
	}
}
