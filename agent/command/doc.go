// Package command is the signed command the ground sends to a drone on the
// MQTT topic fleet/<drone>/cmd (QoS 1): its wire format, signing and
// verification, the ed25519 keys, and the replay list the drone keeps.
//
// The drone's path for every message is
//
//	c, err := command.Parse(payload)   // size limit, strict JSON
//	err = verifier.Verify(c)           // signature, key, drone, times, fields
//	err = seen.Mark(c)                 // ErrReplayed: a QoS 1 redelivery or a replay
//	... act on c ...
//
// and any error refuses the command. Mark persists the id before it returns,
// so act only after Mark succeeds.
//
// # Wire format
//
// A command is one JSON object whose values are all strings:
//
//	{"id":"deploy-42","kind":"update","drone":"d1","app":"flight",
//	"image":"registry.local/flight:v2@sha256:<64 hex>","strategy":"handoff",
//	"issued":"2025-06-01T12:00:00Z","expires":"2025-06-01T12:02:00Z",
//	"key_id":"0123456789abcdef","sig":"<base64>"}
//
// The fields:
//
//   - id: the idempotency key, 1 to 64 characters from [A-Za-z0-9._-].
//   - kind: "update", "rollback" or "status".
//   - drone: the target drone, 1 to 64 characters from [A-Za-z0-9._-],
//     starting with a letter or digit.
//   - app: the app the command is about (same characters as drone);
//     required for update and rollback, optional for status.
//   - image: an OCI reference pinned by digest, name[:tag]@sha256:<64
//     lowercase hex>. Required for update; optional for rollback (the release
//     to return to; none means the previous committed release); absent for
//     status. A tag alone is refused: resolve it to a digest first.
//   - strategy: "", "handoff", "stop-start" or "start-then-stop" (the values
//     of strategy.Strategy; "" lets the image's label decide). Absent for
//     status.
//   - issued, expires: UTC times in exactly the form 2006-01-02T15:04:05Z
//     (whole seconds, upper-case T and Z, no offset, no fraction).
//   - key_id: which trusted key signed; by convention KeyID of the public
//     key (16 lowercase hex characters), or any name the drone's trusted-key
//     list gives it (same characters as drone).
//   - sig: the ed25519 signature of the canonical bytes, standard base64
//     with padding (88 characters).
//
// Parse refuses payloads over MaxSize bytes, anything but one JSON object,
// unknown or duplicate keys (keys match exactly, case included), non-string
// values and trailing data. Empty optional fields may be present as "" or
// left out.
//
// # Canonical bytes
//
// The signature covers these bytes, which every signer must produce
// identically:
//
//	skyswap-cmd-v1\n{"id":"…","kind":"…","drone":"…","app":"…","image":"…","strategy":"…","issued":"…","expires":"…","key_id":"…"}
//
// That is the domain-separation prefix "skyswap-cmd-v1" and one line feed
// (0x0A), 15 bytes in all, then a JSON object with exactly these nine keys in
// this order, every key present (an absent optional field is ""), no
// whitespace anywhere, and no trailing newline. Every value is the field's
// string as on the wire; the times are in the form above. Only valid
// commands have canonical bytes, and the characters a valid command may hold
// need no JSON escaping, so each value appears verbatim between its quotes.
// sig itself is not covered. testdata/canonical.golden holds the canonical
// bytes of a fixed command and testdata/signed.golden.json that command
// signed by a fixed test key; both are checked by the tests so that a new
// version keeps verifying what an old one signed. A change to the canonical
// form needs a new prefix (skyswap-cmd-v2).
//
// # Checks
//
// Verify refuses, with errors that wrap one sentinel each: no signature
// (ErrUnsigned), a field out of the rules above or a lifetime (expires −
// issued) over Verifier.MaxLifetime (ErrMalformed, with a *FieldError naming
// the field), a key_id not in Verifier.Keys (ErrUnknownKey), a signature that
// does not match (ErrBadSignature), another drone's command (ErrWrongDrone),
// issued more than Verifier.MaxSkew ahead of the drone's clock
// (ErrNotYetValid) and a command at or after its expiry (ErrExpired). Expiry
// has no tolerance: Seen forgets an id once the command expires, so a
// tolerance there would let an expired command be replayed.
//
// # Keys
//
// Private keys are PEM "PRIVATE KEY" blocks (PKCS#8) in files of mode 0600;
// public keys are PEM "PUBLIC KEY" blocks (PKIX). The drone's trusted keys
// come from one setting (AGENT_TRUSTED_KEYS), parsed by LoadPublicKeys:
// comma-separated keyid=path.pem or keyid=<base64 of the 32-byte key>.
package command
