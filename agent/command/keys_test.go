package command

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kp, pp := filepath.Join(dir, "ground.key"), filepath.Join(dir, "ground.pub")
	if err := WritePrivateKey(kp, priv); err != nil {
		t.Fatal(err)
	}
	if err := WritePublicKey(pp, pub); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]fs.FileMode{kp: 0o600, pp: 0o644} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	data, _ := os.ReadFile(kp)
	if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("private key file starts %q", data[:30])
	}
	data, _ = os.ReadFile(pp)
	if !strings.HasPrefix(string(data), "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("public key file starts %q", data[:30])
	}
	priv2, err := ReadPrivateKey(kp)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := ReadPublicKey(pp)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Equal(priv2) || !pub.Equal(pub2) {
		t.Error("keys changed through their files")
	}
	// Files written by one side work for the other.
	signed := mustSign(t, baseCommand(), priv2)
	v := Verifier{Keys: map[string]ed25519.PublicKey{KeyID(pub2): pub2}, Now: func() time.Time { return t0 }, Drone: "drone-7"}
	if err := v.Verify(signed); err != nil {
		t.Error(err)
	}
	// Never overwrite.
	if err := WritePrivateKey(kp, priv); !errors.Is(err, fs.ErrExist) {
		t.Errorf("overwriting a private key: %v, want fs.ErrExist", err)
	}
	if err := WritePublicKey(pp, pub); !errors.Is(err, fs.ErrExist) {
		t.Errorf("overwriting a public key: %v, want fs.ErrExist", err)
	}
	// A private key others can read is refused.
	if err := os.Chmod(kp, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKey(kp); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key: %v, want ErrBadKey saying chmod 600", err)
	}
}

func TestKeyID(t *testing.T) {
	pub, _ := testKey(t)
	// Pinned: the golden files and every drone's settings depend on it.
	if got, want := KeyID(pub), "1bf99ac1044b9ddd"; got != want {
		t.Errorf("KeyID = %s, want %s", got, want)
	}
	opub, _ := otherKey(t)
	if KeyID(opub) == KeyID(pub) {
		t.Error("two keys, one id")
	}
}

func TestParseKeyErrors(t *testing.T) {
	pub, priv := testKey(t)
	privPEM, _ := MarshalPrivateKey(priv)
	pubPEM, _ := MarshalPublicKey(pub)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPriv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	ecPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER})
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: ecDER})

	tests := []struct {
		name string
		data []byte
		pub  bool
		msg  string
	}{
		{"empty", nil, false, "no PEM block"},
		{"garbage", []byte("hello"), true, "no PEM block"},
		{"public as private", pubPEM, false, `want "PRIVATE KEY"`},
		{"private as public", privPEM, true, `want "PUBLIC KEY"`},
		{"ecdsa private", ecPriv, false, "want ed25519"},
		{"ecdsa public", ecPub, true, "want ed25519"},
		{"headers", withHeader, false, "headers"},
		{"two blocks", append(append([]byte{}, privPEM...), privPEM...), false, "one key per file"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), true, "bad key"},
	}
	for _, tt := range tests {
		var err error
		if tt.pub {
			_, err = ParsePublicKey(tt.data)
		} else {
			_, err = ParsePrivateKey(tt.data)
		}
		if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want ErrBadKey saying %q", tt.name, err, tt.msg)
		}
	}
	if _, err := MarshalPrivateKey(priv[:5]); !errors.Is(err, ErrBadKey) {
		t.Errorf("MarshalPrivateKey(short) = %v", err)
	}
	if _, err := MarshalPublicKey(pub[:5]); !errors.Is(err, ErrBadKey) {
		t.Errorf("MarshalPublicKey(short) = %v", err)
	}
}

func TestLoadPublicKeys(t *testing.T) {
	dir := t.TempDir()
	pub, _ := testKey(t)
	opub, _ := otherKey(t)
	id, oid := KeyID(pub), KeyID(opub)
	pubPath := filepath.Join(dir, "ground.pub")
	if err := WritePublicKey(pubPath, pub); err != nil {
		t.Fatal(err)
	}
	raw := base64.StdEncoding.EncodeToString(opub)
	rawNoPad := base64.RawStdEncoding.EncodeToString(opub)

	tests := []struct {
		name, spec string
		want       map[string]ed25519.PublicKey
		msg        string
	}{
		{name: "path", spec: id + "=" + pubPath, want: map[string]ed25519.PublicKey{id: pub}},
		{name: "base64", spec: oid + "=" + raw, want: map[string]ed25519.PublicKey{oid: opub}},
		{name: "base64 unpadded", spec: oid + "=" + rawNoPad, want: map[string]ed25519.PublicKey{oid: opub}},
		{name: "two, spaces, trailing comma", spec: " " + id + " = " + pubPath + " , backup=" + raw + ",",
			want: map[string]ed25519.PublicKey{id: pub, "backup": opub}},
		{name: "one key under two names", spec: "a=" + raw + ",b=" + raw, want: map[string]ed25519.PublicKey{"a": opub, "b": opub}},

		{name: "empty", spec: "", msg: "AGENT_TRUSTED_KEYS"},
		{name: "only commas", spec: " , ,", msg: "no trusted keys"},
		{name: "no =", spec: pubPath, msg: "keyid=path.pem"},
		{name: "no value", spec: "a=", msg: "keyid=path.pem"},
		{name: "bad id", spec: "../a=" + raw, msg: "trusted key id"},
		{name: "empty id", spec: "=" + raw, msg: "trusted key id"},
		{name: "duplicate id", spec: "a=" + raw + ",a=" + pubPath, msg: "twice"},
		{name: "missing file", spec: "a=" + filepath.Join(dir, "nope.pub"), msg: "no such file"},
		{name: "short base64", spec: "a=" + base64.StdEncoding.EncodeToString(opub[:31]), msg: "no such file"},
		{name: "id of another key", spec: oid + "=" + pubPath, msg: "list it as " + id + "="},
	}
	for _, tt := range tests {
		got, err := LoadPublicKeys(tt.spec)
		if tt.msg != "" {
			if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s: %v, want ErrBadKey saying %q", tt.name, err, tt.msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: %d keys, want %d", tt.name, len(got), len(tt.want))
		}
		for k, w := range tt.want {
			if !w.Equal(got[k]) {
				t.Errorf("%s: key %s differs", tt.name, k)
			}
		}
	}
}
