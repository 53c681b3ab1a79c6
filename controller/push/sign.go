package push

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/skyswap/skyswap/agent/command"
)

// DefaultTTL is a command's lifetime when Signer.TTL (Config.TTL) is zero.
const DefaultTTL = 2 * time.Minute

// Signer completes and signs commands: the one path from fields to a signed
// command for dronectl sign, push, rollback and status. Key is required;
// every other zero value means the default documented on the field.
type Signer struct {
	// Key signs (from command.ReadPrivateKey).
	Key ed25519.PrivateKey
	// KeyID is the id the drone knows the key by (its AGENT_TRUSTED_KEYS);
	// "" means command.KeyID of Key's public key, as dronectl keygen prints.
	KeyID string
	// TTL is how long the command stays valid: whole seconds, at most
	// command.DefaultMaxLifetime (drones refuse longer); 0 means
	// DefaultTTL.
	TTL time.Duration
	// Now is the ground's clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of generated ids; nil means crypto/rand.
	Rand io.Reader
}

// Sign returns c signed: Issued is now (whole seconds, UTC), Expires is
// Issued + TTL, KeyID is set, and an empty ID becomes one made of the time
// and 48 random bits (20250601T120000Z-0123456789ab). A field the drone
// would refuse is a *command.FieldError naming it (a bad TTL names
// "expires").
func (s Signer) Sign(c command.Command) (command.Command, error) {
	if len(s.Key) != ed25519.PrivateKeySize {
		return command.Command{}, fmt.Errorf("push: no signing key (%d bytes): load one with command.ReadPrivateKey: %w", len(s.Key), command.ErrBadKey)
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl%time.Second != 0 || ttl > command.DefaultMaxLifetime {
		return command.Command{}, &command.FieldError{Field: "expires",
			Msg: fmt.Sprintf("lifetime %s must be whole seconds between 1s and %s (drones refuse longer lifetimes)", ttl, command.DefaultMaxLifetime)}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	issued := now().UTC().Truncate(time.Second)
	if c.ID == "" {
		r := s.Rand
		if r == nil {
			r = rand.Reader
		}
		var b [6]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return command.Command{}, fmt.Errorf("push: command id: %w", err)
		}
		c.ID = issued.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	keyID := s.KeyID
	if keyID == "" {
		keyID = command.KeyID(s.Key.Public().(ed25519.PublicKey))
	}
	c.Issued, c.Expires = issued, issued.Add(ttl)
	return command.Sign(c, keyID, s.Key)
}
