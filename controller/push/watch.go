package push

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
)

// Watcher follows topics of the whole fleet on the broker: the ground
// station's intake. It is the same connection as a command's (a clean
// session under a fresh client id that subscribes again after a
// reconnect), without a drone or a command.
type Watcher struct {
	l *link
}

// Watch connects to cfg's broker (cfg.Broker, the credentials and TLS
// files, cfg.Session; cfg.Drone and cfg.Key are not needed) and subscribes
// to each filter (QoS 1), e.g. fleet/+/telemetry. Messages come on Messages in
// arrival order, retained ones first after each subscription; a reader
// that falls 1024 messages behind holds up the connection, so read
// without blocking on anything slow. A bad Config is a *ConfigError.
func Watch(ctx context.Context, cfg Config, filters ...string) (*Watcher, error) {
	s, err := cfg.linkSettings()
	if err != nil {
		return nil, err
	}
	l, err := dial(ctx, s, cfg.Session, filters...)
	if err != nil {
		return nil, err
	}
	for _, f := range filters {
		if err := l.follow(ctx, f); err != nil {
			l.close()
			return nil, err
		}
	}
	return &Watcher{l: l}, nil
}

// Messages is the channel of the messages received.
func (w *Watcher) Messages() <-chan Message { return w.l.msgs }

// Close disconnects; messages still arriving are dropped.
func (w *Watcher) Close() { w.l.close() }

// Send publishes c, signed (Signer), on its drone's command topic (QoS 1)
// and returns once the broker has acknowledged it: the path by which a
// watcher that follows many drones (a rollout) commands them, over its
// own connection. It is safe to call from several goroutines. An error
// does not prove the command was not delivered: the broker may have it.
func (w *Watcher) Send(ctx context.Context, c command.Command) error {
	if len(c.Sig) == 0 {
		return fmt.Errorf("push: command %s is not signed: sign it (Signer) first", c.ID)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("push: encode command %s: %w", c.ID, err)
	}
	return w.l.publish(ctx, broker.Topics(c.Drone).Cmd, b)
}
