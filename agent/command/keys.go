package command

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
)

// PEM block types of key files.
const (
	pemPrivate = "PRIVATE KEY" // PKCS#8
	pemPublic  = "PUBLIC KEY"  // PKIX
)

// GenerateKey returns a new ed25519 key pair from crypto/rand.
func GenerateKey() (pub ed25519.PublicKey, priv ed25519.PrivateKey, err error) {
	return ed25519.GenerateKey(rand.Reader)
}

// KeyID is the conventional id of a public key: the first 16 hex
// characters of sha256 of its 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// MarshalPrivateKey encodes priv as a PEM "PRIVATE KEY" block (PKCS#8).
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(priv), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" block (PKIX).
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadKey, len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// pemBlock returns the one PEM block of type typ in data; anything else
// but surrounding whitespace is an error.
func pemBlock(data []byte, typ string) ([]byte, error) {
	b, rest := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block: want a %q block", ErrBadKey, typ)
	}
	if b.Type != typ {
		return nil, fmt.Errorf("%w: PEM block is %.40q, want %q", ErrBadKey, b.Type, typ)
	}
	if len(b.Headers) > 0 {
		return nil, fmt.Errorf("%w: PEM block has headers (an encrypted key?): want a plain %q block", ErrBadKey, typ)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%w: data after the %q block: one key per file", ErrBadKey, typ)
	}
	return b.Bytes, nil
}

// ParsePrivateKey decodes a PEM "PRIVATE KEY" block holding an ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	der, err := pemBlock(data, pemPrivate)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, want ed25519 (dronectl keygen makes one)", ErrBadKey, k)
	}
	return priv, nil
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" block holding an ed25519 key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	der, err := pemBlock(data, pemPublic)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: public key is %T, want ed25519 (dronectl keygen makes one)", ErrBadKey, k)
	}
	return pub, nil
}

// WritePrivateKey writes priv to a new file at path with mode 0600. It
// never replaces an existing file (the error wraps fs.ErrExist).
func WritePrivateKey(path string, priv ed25519.PrivateKey) error {
	data, err := MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	return writeNew(path, data, 0o600)
}

// WritePublicKey writes pub to a new file at path with mode 0644. It never
// replaces an existing file (the error wraps fs.ErrExist).
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	data, err := MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	return writeNew(path, data, 0o644)
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// ReadPrivateKey reads a private key file. A file that group or others may
// read or write is refused (ErrBadKey), as ssh does: chmod 600 it.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, open to other users: chmod 600 %s", ErrBadKey, path, perm, path)
	}
	data, err := readSmall(f, path)
	if err != nil {
		return nil, err
	}
	priv, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return priv, nil
}

// ReadPublicKey reads a public key file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readSmall(f, path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// maxKeyFile bounds a key file; an ed25519 PEM file is under 200 bytes.
const maxKeyFile = 16 << 10

func readSmall(f *os.File, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is over %d bytes: not a key file", ErrBadKey, path, maxKeyFile)
	}
	return data, nil
}

// LoadPublicKeys parses a trusted-keys setting (AGENT_TRUSTED_KEYS):
// comma-separated entries keyid=path.pem or keyid=<standard base64, padded
// or not, of the 32-byte key>; a value that decodes to 32 bytes is a key,
// anything else a path. Spaces around entries and empty entries are
// ignored. Key ids follow the key_id rules; one that looks like a KeyID (16
// lowercase hex characters) must be the key's KeyID, which catches a key
// listed under another key's id. An empty setting is an error: a drone
// that trusts no key can be sent nothing.
func LoadPublicKeys(spec string) (map[string]ed25519.PublicKey, error) {
	keys := make(map[string]ed25519.PublicKey)
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, val, ok := strings.Cut(entry, "=")
		id, val = strings.TrimSpace(id), strings.TrimSpace(val)
		if !ok || val == "" {
			return nil, fmt.Errorf("%w: trusted key entry %.100q: want keyid=path.pem or keyid=base64key", ErrBadKey, entry)
		}
		if !validName(id, true) {
			return nil, fmt.Errorf("%w: trusted key id %.100q must be 1 to %d characters from [A-Za-z0-9._-], starting with a letter or digit", ErrBadKey, id, maxName)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("%w: trusted key id %q is listed twice", ErrBadKey, id)
		}
		pub := decodeRawKey(val)
		if pub == nil {
			var err error
			if pub, err = ReadPublicKey(val); err != nil {
				return nil, fmt.Errorf("%w: trusted key %q: %w", ErrBadKey, id, err)
			}
		}
		if looksLikeKeyID(id) && id != KeyID(pub) {
			return nil, fmt.Errorf("%w: trusted key id %q is not this key's id (%s): list it as %s=%s",
				ErrBadKey, id, KeyID(pub), KeyID(pub), val)
		}
		keys[id] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no trusted keys: set AGENT_TRUSTED_KEYS to keyid=path.pem[,keyid=path.pem...] (dronectl keygen prints the key id)", ErrBadKey)
	}
	return keys, nil
}

// decodeRawKey returns the key if s is base64 of exactly 32 bytes, else nil.
func decodeRawKey(s string) ed25519.PublicKey {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize && enc.EncodeToString(b) == s {
			return ed25519.PublicKey(b)
		}
	}
	return nil
}

func looksLikeKeyID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
