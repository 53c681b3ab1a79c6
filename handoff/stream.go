package handoff

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamKeep is how long the frame stream keeps frames: long enough for a
// candidate that starts late to hydrate from the newest one.
const StreamKeep = 5 * time.Second

var appName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// CheckApp validates an app name (it becomes part of subject and stream
// names).
func CheckApp(app string) error {
	if !appName.MatchString(app) {
		return fmt.Errorf("handoff: app name %q: use 1-32 of a-z 0-9 _ -, starting with a letter or digit", app)
	}
	return nil
}

// EnsureStream creates or updates app's frame stream: memory storage, the
// last StreamKeep of frames.
func EnsureStream(ctx context.Context, nc *nats.Conn, app string) error {
	if err := CheckApp(app); err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("handoff: jetstream: %w", err)
	}
	sub := SubjectsFor(app)
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      sub.Stream(),
		Subjects:  []string{sub.Frames()},
		Storage:   jetstream.MemoryStorage,
		MaxAge:    StreamKeep,
		MaxMsgs:   8192,
		Discard:   jetstream.DiscardOld,
		Retention: jetstream.LimitsPolicy,
	})
	if err != nil {
		return fmt.Errorf("handoff: stream %s: %w (is JetStream enabled on the NATS server?)", sub.Stream(), err)
	}
	return nil
}

// LastFrame returns the newest frame kept in app's stream, or nil if there
// is none.
func LastFrame(ctx context.Context, nc *nats.Conn, app string) ([]byte, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("handoff: jetstream: %w", err)
	}
	sub := SubjectsFor(app)
	st, err := js.Stream(ctx, sub.Stream())
	if err != nil {
		return nil, fmt.Errorf("handoff: stream %s: %w", sub.Stream(), err)
	}
	m, err := st.GetLastMsgForSubject(ctx, sub.Frames())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("handoff: last frame: %w", err)
	}
	return m.Data, nil
}
