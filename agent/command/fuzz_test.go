package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, refuses only with ErrMalformed or
// ErrTooLarge, and what it accepts survives Marshal and Parse again with
// the same canonical bytes and signature. Normal test runs use the seed
// corpus only; go test -fuzz=FuzzParse ./agent/command/ explores.
func FuzzParse(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "signed.golden.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(golden),
		`{}`,
		`{"id":"x","kind":"status","drone":"d","issued":"2025-06-01T12:00:00Z","expires":"2025-06-01T12:01:00Z","key_id":"k"}`,
		`{"id":"x","id":"y"}`,
		`{"sig":"` + b64(make([]byte, 64)) + `"}`,
		`{"issued":"2025-06-01T12:00:00.999Z"}`,
		`{"ID":1}`,
		`[]`,
		`{"a":[[[[{}]]]]}`,
		"{\"id\":\"\xff\"}",
		`{"image":"a:b@sha256:` + string(bytes.Repeat([]byte("a"), 64)) + `"}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse error %v wraps neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		canon, cerr := c.Canonical()
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed command: %v", err)
		}
		c2, err := Parse(js)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %v", data, err)
		}
		canon2, cerr2 := c2.Canonical()
		if (cerr == nil) != (cerr2 == nil) || !bytes.Equal(canon, canon2) || !bytes.Equal(c.Sig, c2.Sig) {
			t.Fatalf("round trip changed the command: %q → %s", data, js)
		}
		if cerr == nil && !json.Valid(canon[len(Domain):]) {
			t.Fatalf("canonical bytes are not JSON after the prefix: %q", canon)
		}
		_ = Verifier{}.Verify(c)
	})
}
