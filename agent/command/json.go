package command

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// wire is the JSON form of a Command, keys in canonical order.
type wire struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Drone    string `json:"drone"`
	App      string `json:"app,omitempty"`
	Image    string `json:"image,omitempty"`
	Strategy string `json:"strategy,omitempty"`
	Issued   string `json:"issued"`
	Expires  string `json:"expires"`
	KeyID    string `json:"key_id"`
	Sig      string `json:"sig,omitempty"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// MarshalJSON encodes c in the wire format: keys in canonical order, no
// whitespace, empty app, image, strategy and sig left out. It does not
// validate c.
func (c Command) MarshalJSON() ([]byte, error) {
	w := wire{
		ID: c.ID, Kind: string(c.Kind), Drone: c.Drone, App: c.App,
		Image: c.Image, Strategy: c.Strategy,
		Issued: formatTime(c.Issued), Expires: formatTime(c.Expires),
		KeyID: c.KeyID,
	}
	if len(c.Sig) > 0 {
		w.Sig = base64.StdEncoding.EncodeToString(c.Sig)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes the wire format as strictly as Parse, without the
// size limit.
func (c *Command) UnmarshalJSON(data []byte) error {
	v, err := parse(data)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Parse decodes one command from data: at most MaxSize bytes (ErrTooLarge),
// one JSON object of string values with known keys only, each at most once,
// and nothing after it (ErrMalformed). Parse checks the syntax and the form
// of issued, expires and sig; Verify checks the rest.
func Parse(data []byte) (Command, error) {
	if len(data) > MaxSize {
		return Command{}, fmt.Errorf("%w: %d bytes, the limit is %d: a command is a small JSON object, not a file", ErrTooLarge, len(data), MaxSize)
	}
	return parse(data)
}

// fields are the keys of the wire format.
var fields = map[string]bool{
	"id": true, "kind": true, "drone": true, "app": true, "image": true,
	"strategy": true, "issued": true, "expires": true, "key_id": true, "sig": true,
}

func parse(data []byte) (Command, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return Command{}, err
	}
	vals := make(map[string]string, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Command{}, malformedJSON(err)
		}
		key, ok := tok.(string)
		if !ok { // unreachable: the decoder only returns string keys
			return Command{}, fmt.Errorf("%w: object key %v is not a string", ErrMalformed, tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Command{}, malformedJSON(err)
		}
		if !fields[key] {
			return Command{}, fmt.Errorf("%w: unknown field %.64q: a command has only id, kind, drone, app, "+
				"image, strategy, issued, expires, key_id and sig (is the ground newer than this agent?)", ErrMalformed, key)
		}
		if _, dup := vals[key]; dup {
			return Command{}, fieldErr(key, "appears twice")
		}
		if len(raw) == 0 || raw[0] != '"' {
			return Command{}, fieldErr(key, "must be a JSON string")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Command{}, malformedJSON(err)
		}
		vals[key] = s
	}
	if err := expectDelim(dec, '}'); err != nil {
		return Command{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return Command{}, fmt.Errorf("%w: data after the JSON object: send one command per message", ErrMalformed)
	}
	c := Command{
		ID: vals["id"], Kind: Kind(vals["kind"]), Drone: vals["drone"], App: vals["app"],
		Image: vals["image"], Strategy: vals["strategy"], KeyID: vals["key_id"],
	}
	var err error
	if c.Issued, err = parseTime("issued", vals["issued"]); err != nil {
		return Command{}, err
	}
	if c.Expires, err = parseTime("expires", vals["expires"]); err != nil {
		return Command{}, err
	}
	if c.Sig, err = parseSig(vals["sig"]); err != nil {
		return Command{}, err
	}
	return c, nil
}

// parseTime accepts "" (the zero time; Verify reports it missing) and
// exactly the TimeFormat form.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(TimeFormat, s)
	// time.Parse accepts a fraction the layout lacks: compare the round trip.
	if err != nil || t.Format(TimeFormat) != s {
		return time.Time{}, fieldErr(field, "%q is not a UTC time of the form 2006-01-02T15:04:05Z (whole seconds, no offset)", s)
	}
	return t, nil
}

// parseSig accepts "" (unsigned; Verify reports it) and the padded standard
// base64 of exactly one ed25519 signature, in its one canonical spelling.
func parseSig(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(s)
	// The decoder skips \r and \n: compare the round trip.
	if err != nil || base64.StdEncoding.EncodeToString(sig) != s {
		return nil, fieldErr("sig", "is not standard base64 with padding")
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fieldErr("sig", "is %d bytes, an ed25519 signature is %d", len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return malformedJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: a command is one JSON object (want %q)", ErrMalformed, string(want))
	}
	return nil
}

func malformedJSON(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: JSON ends early: a command is one complete JSON object", ErrMalformed)
	}
	return fmt.Errorf("%w: invalid JSON: %v", ErrMalformed, err)
}
