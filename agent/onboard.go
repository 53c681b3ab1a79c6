package agent

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
)

// Onboard is the on-board queue as the agent reads it: the app's frames
// and camera stream. NATSOnboard is the one over NATS; the agent's logic
// (Flying, RelayTelemetry, the schema check) sees only this.
type Onboard interface {
	// Subscribe calls fn with each message's data on subject, one at a
	// time, until stop is called.
	Subscribe(subject string, fn func(data []byte)) (stop func(), err error)
	// LastFrame returns the newest frame app's stream keeps (nil if none).
	LastFrame(ctx context.Context, app string) ([]byte, error)
}

// NATSOnboard is Onboard over a connection to the on-board NATS.
func NATSOnboard(nc *nats.Conn) Onboard { return natsOnboard{nc} }

type natsOnboard struct{ nc *nats.Conn }

func (o natsOnboard) Subscribe(subject string, fn func([]byte)) (func(), error) {
	sub, err := o.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("agent: subscribe %s: %w", subject, err)
	}
	return func() { sub.Unsubscribe() }, nil
}

func (o natsOnboard) LastFrame(ctx context.Context, app string) ([]byte, error) {
	return handoff.LastFrame(ctx, o.nc, app)
}
