package command

import (
	"crypto/ed25519"
	"fmt"
	"time"
)

// Defaults of Verifier's zero fields.
const (
	DefaultMaxSkew     = 30 * time.Second
	DefaultMaxLifetime = 10 * time.Minute
)

// Verifier decides whether this drone accepts a command. Its zero value
// trusts no key and so refuses every command.
type Verifier struct {
	// Keys are the trusted public keys by key id (see LoadPublicKeys).
	// nil or empty: every command is refused with ErrUnknownKey.
	Keys map[string]ed25519.PublicKey
	// Now is the drone's clock; nil means time.Now. Give Seen the same one.
	Now func() time.Time
	// MaxSkew is how far issued may be ahead of Now; zero or negative
	// means DefaultMaxSkew (30s). It does not extend expires.
	MaxSkew time.Duration
	// MaxLifetime is the longest expires − issued accepted; zero or
	// negative means DefaultMaxLifetime (10 min).
	MaxLifetime time.Duration
	// Drone is this drone's id: a command for another drone is refused
	// with ErrWrongDrone. Empty: every command is refused.
	Drone string
}

// Verify returns nil if c is well formed, signed by a trusted key,
// addressed to v.Drone and valid now; otherwise an error wrapping one of
// ErrUnsigned, ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrWrongDrone,
// ErrNotYetValid or ErrExpired, in the order checked. Content checks
// other than the fields' form come after the signature, so an unsigned or
// forged command learns nothing about the drone's clock or id. Verify does
// not check replays: that is Seen's job.
func (v Verifier) Verify(c Command) error {
	if len(c.Sig) == 0 {
		return fmt.Errorf("%w: the command has no sig: sign it (dronectl sign) with a key listed in AGENT_TRUSTED_KEYS", ErrUnsigned)
	}
	msg, err := c.Canonical()
	if err != nil {
		return err
	}
	pub, ok := v.Keys[c.KeyID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: key_id %q is not trusted by this drone: re-sign with a key listed in AGENT_TRUSTED_KEYS, or add its public key there", ErrUnknownKey, c.KeyID)
	}
	if len(c.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, c.Sig) {
		return fmt.Errorf("%w: the signature does not match key %q: the command was altered after signing, "+
			"or signed with another key or another canonical form; re-sign it", ErrBadSignature, c.KeyID)
	}
	if v.Drone == "" {
		return fmt.Errorf("%w: this agent has no drone id configured, so it accepts no command: set its drone id", ErrWrongDrone)
	}
	if c.Drone != v.Drone {
		return fmt.Errorf("%w: the command is for drone %q, this is %q: publish it on fleet/%s/cmd", ErrWrongDrone, c.Drone, v.Drone, c.Drone)
	}
	maxLife := v.MaxLifetime
	if maxLife <= 0 {
		maxLife = DefaultMaxLifetime
	}
	if life := c.Expires.Sub(c.Issued); life > maxLife {
		return fieldErr("expires", "lifetime %s (expires − issued) is over this drone's limit of %s: sign with a shorter -ttl", life, maxLife)
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if ahead := c.Issued.Sub(now); ahead > skew {
		return fmt.Errorf("%w: issued %s is %s ahead of this drone's clock (%s): clocks differ by more than %s: check NTP on the drone and the ground",
			ErrNotYetValid, c.Issued.UTC().Format(TimeFormat), ahead.Round(time.Second), now.UTC().Format(TimeFormat), skew)
	}
	if !now.Before(c.Expires) {
		return fmt.Errorf("%w: expired at %s, %s before this drone's clock (%s): sign a new command; "+
			"if it was fresh, check NTP on the drone and the ground or use a longer -ttl",
			ErrExpired, c.Expires.UTC().Format(TimeFormat), now.Sub(c.Expires).Round(time.Second), now.UTC().Format(TimeFormat))
	}
	return nil
}
