package command

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/skyswap/skyswap/handoff/strategy"
)

// Domain is the domain-separation prefix of the canonical bytes. A signature
// over bytes that start with anything else is not a command signature.
const Domain = "skyswap-cmd-v1\n"

// TimeFormat is the one form of issued and expires, on the wire and in the
// canonical bytes: UTC, whole seconds.
const TimeFormat = "2006-01-02T15:04:05Z"

// MaxSize is the largest payload Parse accepts, in bytes.
const MaxSize = 16 << 10

// Sentinel errors. Every error of this package wraps at most one of them;
// branch with errors.Is.
var (
	// ErrUnsigned: the command carries no signature.
	ErrUnsigned = errors.New("command: unsigned")
	// ErrUnknownKey: key_id names no trusted key.
	ErrUnknownKey = errors.New("command: unknown key")
	// ErrBadSignature: the signature does not match the canonical bytes and
	// the key.
	ErrBadSignature = errors.New("command: bad signature")
	// ErrExpired: the drone's clock is at or after expires.
	ErrExpired = errors.New("command: expired")
	// ErrNotYetValid: issued is ahead of the drone's clock by more than the
	// allowed skew.
	ErrNotYetValid = errors.New("command: not yet valid")
	// ErrWrongDrone: the command is addressed to another drone.
	ErrWrongDrone = errors.New("command: wrong drone")
	// ErrMalformed: the payload is not a well-formed command (bad JSON, an
	// unknown field, a field out of its rules, a lifetime too long). Such
	// errors are *FieldError when one field is to blame.
	ErrMalformed = errors.New("command: malformed")
	// ErrTooLarge: the payload exceeds MaxSize.
	ErrTooLarge = errors.New("command: too large")
	// ErrReplayed: Seen already accepted a command with this id.
	ErrReplayed = errors.New("command: replayed")
	// ErrBadKey: a key file or trusted-key setting cannot be used.
	ErrBadKey = errors.New("command: bad key")
)

// FieldError is a malformed field. It wraps ErrMalformed.
type FieldError struct {
	// Field is the JSON name of the field ("id", "image", ...), also the
	// name of dronectl's flag that sets it where there is one.
	Field string
	// Msg says what is wrong and what to do.
	Msg string
}

func (e *FieldError) Error() string {
	return ErrMalformed.Error() + ": " + e.Field + ": " + e.Msg
}

// Unwrap returns ErrMalformed.
func (e *FieldError) Unwrap() error { return ErrMalformed }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Kind is what a command asks for.
type Kind string

// Kinds.
const (
	// KindUpdate replaces the app's running release with Image.
	KindUpdate Kind = "update"
	// KindRollback returns the app to Image or, without one, to its
	// previous committed release.
	KindRollback Kind = "rollback"
	// KindStatus asks the drone to publish its state now.
	KindStatus Kind = "status"
)

// Command is one command to one drone. Its zero value is not valid; build
// one, then Sign it. The package doc describes each field's rules.
type Command struct {
	ID       string // idempotency key
	Kind     Kind
	Drone    string // target drone id
	App      string
	Image    string // name[:tag]@sha256:<hex>
	Strategy string // "" (the image's label decides) or a strategy.Strategy
	Issued   time.Time
	Expires  time.Time
	KeyID    string // which trusted key signed
	Sig      []byte // ed25519 signature of Canonical(); not covered by it
}

const maxName = 64

// MaxIDLen is the longest command id: 1 to MaxIDLen characters from
// [A-Za-z0-9._-] (see the package doc).
const MaxIDLen = maxName

// validName reports whether s is 1..64 characters of [A-Za-z0-9._-]; with
// alnumFirst the first one must be a letter or digit (no ".", "..", or
// "-flag" as a drone, app or key name).
func validName(s string, alnumFirst bool) bool {
	if len(s) == 0 || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum {
			continue
		}
		if i == 0 && alnumFirst || b != '.' && b != '_' && b != '-' {
			return false
		}
	}
	return true
}

// Image references, after the grammar of github.com/distribution/reference,
// restricted to sha256 digests.
var (
	refName = func() string {
		alnum := `[a-z0-9]+`
		sep := `(?:[._]|__|-+)`
		component := alnum + `(?:` + sep + alnum + `)*`
		label := `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		host := `(?:` + label + `(?:\.` + label + `)*|\[[a-fA-F0-9:]+\])`
		domain := host + `(?::[0-9]+)?`
		return `(?:` + domain + `/)?` + component + `(?:/` + component + `)*`
	}()
	refTag       = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
	refDigest    = `sha256:[a-f0-9]{64}`
	pinnedRE     = regexp.MustCompile(`^(` + refName + `)(?::` + refTag + `)?@` + refDigest + `$`)
	unpinnedRE   = regexp.MustCompile(`^(` + refName + `)(?::` + refTag + `)?$`)
	maxImage     = 512
	maxImageName = 255
)

// CheckImage returns nil if ref is an OCI reference pinned by a sha256
// digest, name[:tag]@sha256:<64 lowercase hex>, and otherwise a *FieldError
// for "image" that says what to do.
func CheckImage(ref string) error {
	if len(ref) > maxImage {
		return fieldErr("image", "reference is %d characters, limit %d", len(ref), maxImage)
	}
	if m := pinnedRE.FindStringSubmatch(ref); m != nil {
		if len(m[1]) > maxImageName {
			return fieldErr("image", "repository name is %d characters, limit %d", len(m[1]), maxImageName)
		}
		return nil
	}
	if unpinnedRE.MatchString(ref) {
		return fieldErr("image", "%.100q is not pinned by digest: resolve it to a digest "+
			"(e.g. crane digest %s) and send NAME[:TAG]@sha256:<digest>", ref, ref)
	}
	if i := strings.LastIndexByte(ref, '@'); i >= 0 && unpinnedRE.MatchString(ref[:i]) {
		return fieldErr("image", "%.100q: the digest must be sha256:<64 lowercase hex characters>", ref)
	}
	return fieldErr("image", "%.100q is not an OCI reference of the form NAME[:TAG]@sha256:<64 hex>", ref)
}

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return fieldErr(field, "missing")
	}
	if t.Nanosecond() != 0 {
		return fieldErr(field, "%s has a fraction of a second: use whole seconds", t.UTC().Format(time.RFC3339Nano))
	}
	s := t.UTC().Format(TimeFormat)
	if p, err := time.Parse(TimeFormat, s); err != nil || !p.Equal(t) {
		return fieldErr(field, "%s is out of range (years 0000 to 9999)", s)
	}
	return nil
}

// Validate checks every field but Sig against the rules in the package doc,
// without a clock or keys. Its errors are *FieldError (ErrMalformed).
func (c Command) Validate() error {
	if !validName(c.ID, false) {
		return fieldErr("id", "%.100q must be 1 to %d characters from [A-Za-z0-9._-]", c.ID, maxName)
	}
	switch c.Kind {
	case KindUpdate, KindRollback, KindStatus:
	case "":
		return fieldErr("kind", "missing: use update, rollback or status")
	default:
		return fieldErr("kind", "%.100q is not a command this drone knows: use update, rollback or status", c.Kind)
	}
	// A drone id is one MQTT topic segment (broker.CheckDrone): no '.'.
	if !validName(c.Drone, true) || strings.Contains(c.Drone, ".") {
		return fieldErr("drone", "%.100q must be 1 to %d characters from [A-Za-z0-9_-], starting with a letter or digit", c.Drone, maxName)
	}
	if c.App != "" || c.Kind != KindStatus {
		if !validName(c.App, true) {
			return fieldErr("app", "%.100q must be 1 to %d characters from [A-Za-z0-9._-], starting with a letter or digit", c.App, maxName)
		}
	}
	switch {
	case c.Image != "" && c.Kind == KindStatus:
		return fieldErr("image", "a status command takes no image")
	case c.Image == "" && c.Kind == KindUpdate:
		return fieldErr("image", "missing: an update needs the image reference pinned by digest")
	case c.Image != "":
		if err := CheckImage(c.Image); err != nil {
			return err
		}
	}
	if c.Strategy != "" {
		if err := strategy.Check(c.Strategy); err != nil {
			return fieldErr("strategy", "%v, or leave it empty", err)
		}
		if c.Kind == KindStatus {
			return fieldErr("strategy", "a status command takes no strategy")
		}
	}
	if err := checkTime("issued", c.Issued); err != nil {
		return err
	}
	if err := checkTime("expires", c.Expires); err != nil {
		return err
	}
	if !c.Expires.After(c.Issued) {
		return fieldErr("expires", "%s is not after issued %s", c.Expires.UTC().Format(TimeFormat), c.Issued.UTC().Format(TimeFormat))
	}
	if !validName(c.KeyID, true) {
		return fieldErr("key_id", "%.100q must be 1 to %d characters from [A-Za-z0-9._-], starting with a letter or digit", c.KeyID, maxName)
	}
	return nil
}

// Canonical returns the bytes the signature covers (see the package doc),
// or a *FieldError if c is not valid.
func (c Command) Canonical() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(Domain) + 256 + len(c.Image))
	b.WriteString(Domain)
	for i, f := range [...]struct{ k, v string }{
		{"id", c.ID},
		{"kind", string(c.Kind)},
		{"drone", c.Drone},
		{"app", c.App},
		{"image", c.Image},
		{"strategy", c.Strategy},
		{"issued", c.Issued.UTC().Format(TimeFormat)},
		{"expires", c.Expires.UTC().Format(TimeFormat)},
		{"key_id", c.KeyID},
	} {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		// Valid values hold no character that JSON escapes.
		b.WriteString(`"` + f.k + `":"` + f.v + `"`)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Sign returns c signed by priv under keyID. It sets KeyID, puts Issued and
// Expires in UTC rounded down to whole seconds, and replaces Sig; c itself is
// not changed. It refuses (with a *FieldError) a command that Verify would
// refuse as malformed, the lifetime limit aside.
func Sign(c Command, keyID string, priv ed25519.PrivateKey) (Command, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Command{}, fmt.Errorf("%w: private key is %d bytes, an ed25519 key is %d", ErrBadKey, len(priv), ed25519.PrivateKeySize)
	}
	c.KeyID = keyID
	c.Issued = c.Issued.UTC().Truncate(time.Second)
	c.Expires = c.Expires.UTC().Truncate(time.Second)
	c.Sig = nil
	msg, err := c.Canonical()
	if err != nil {
		return Command{}, err
	}
	c.Sig = ed25519.Sign(priv, msg)
	return c, nil
}
