package push

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
)

func TestSigner(t *testing.T) {
	pub, priv := newKey(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 700_000_000, time.FixedZone("CEST", 2*3600))
	s := Signer{Key: priv, Now: func() time.Time { return now }, Rand: bytes.NewReader([]byte{1, 2, 3, 4, 5, 6})}
	c, err := s.Sign(command.Command{Kind: command.KindUpdate, Drone: "d1", App: "flight", Image: pinned})
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	if c.ID != "20250601T100000Z-010203040506" || !c.Issued.Equal(issued) || c.Issued.Location() != time.UTC ||
		!c.Expires.Equal(issued.Add(DefaultTTL)) || c.KeyID != command.KeyID(pub) {
		t.Errorf("signed %+v", c)
	}
	v := command.Verifier{Keys: map[string]ed25519.PublicKey{c.KeyID: pub}, Drone: "d1", Now: func() time.Time { return now }}
	if err := v.Verify(c); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// A given id and key id are kept; the TTL sets the lifetime.
	s = Signer{Key: priv, KeyID: "ground", TTL: 10 * time.Minute, Now: s.Now}
	c, err = s.Sign(command.Command{ID: "push-1", Kind: command.KindStatus, Drone: "d1"})
	if err != nil || c.ID != "push-1" || c.KeyID != "ground" || c.Expires.Sub(c.Issued) != 10*time.Minute {
		t.Errorf("Sign = %+v, %v", c, err)
	}

	for _, ttl := range []time.Duration{-time.Second, 500 * time.Millisecond, 90500 * time.Millisecond, command.DefaultMaxLifetime + time.Second} {
		_, err := Signer{Key: priv, TTL: ttl}.Sign(command.Command{Kind: command.KindStatus, Drone: "d1"})
		var fe *command.FieldError
		if !errors.As(err, &fe) || fe.Field != "expires" {
			t.Errorf("TTL %s: %v, want a FieldError for expires", ttl, err)
		}
	}
	if _, err := (Signer{}).Sign(command.Command{Kind: command.KindStatus, Drone: "d1"}); !errors.Is(err, command.ErrBadKey) {
		t.Errorf("no key: %v", err)
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		e    report.Event
		ms   time.Duration
		want string
	}{
		{report.Event{Phase: "pulling", To: "h:5000/flight:v2@sha256:ab"}, 3 * time.Millisecond,
			"elapsed_ms=3 phase=pulling to=h:5000/flight:v2@sha256:ab"},
		{report.Event{Phase: "pulled", Bytes: 2048, App: "flight"}, 1520 * time.Millisecond,
			"elapsed_ms=1520 phase=pulled bytes=2048"},
		{report.Event{Phase: "result", Outcome: "reverted", From: "v1", To: "v2", Epoch: 3, Tick: 1200, Error: `candidate "v2" died`}, 9 * time.Second,
			`elapsed_ms=9000 phase=result outcome=reverted from=v1 to=v2 epoch=3 tick=1200 error="candidate \"v2\" died"`},
		{report.Event{Phase: "refused", Error: "a=b"}, 0, `elapsed_ms=0 phase=refused error="a=b"`},
	}
	for _, tt := range tests {
		if got := Line(tt.e, tt.ms); got != tt.want {
			t.Errorf("Line(%+v)\n got %s\nwant %s", tt.e, got, tt.want)
		}
	}
}
