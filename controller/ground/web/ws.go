package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/coder/websocket"
)

// ws is the live feed: a snapshot, then every page message, through this
// connection's own bounded queue.
func (s *server) ws(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil) // refuses another origin
	if err != nil {
		s.cfg.Log.Debug("websocket refused", "err", err)
		return
	}
	defer c.CloseNow()
	// Subscribe before the snapshot: a message between the two comes
	// twice (the page ignores what it has), none is lost.
	sub := s.hub.Subscribe(s.cfg.Queue)
	defer sub.Close()
	ctx := c.CloseRead(r.Context()) // the page sends nothing; this notices it leave
	if err := s.snapshot(ctx, c); err != nil {
		return
	}
	for {
		select {
		case msg := <-sub.C():
			if sub.Lagged() {
				// Behind: what is queued is stale. Start again from now.
				sub.Drain()
				lag := fmt.Appendf(nil, `{"type":"lagged","dropped":%d}`, sub.Dropped())
				if s.write(ctx, c, lag) != nil || s.snapshot(ctx, c) != nil {
					return
				}
				continue
			}
			if s.write(ctx, c, msg) != nil {
				return
			}
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// snapshot sends the whole picture: the fleet, then each rollout (oldest
// first, so that the page's newest comes last).
func (s *server) snapshot(ctx context.Context, c *websocket.Conn) error {
	if err := s.write(ctx, c, s.fleet.Snapshot(s.cfg.Now())); err != nil {
		return err
	}
	if s.cfg.Rollouts == nil {
		return nil
	}
	recs := s.cfg.Rollouts.List()
	for i := len(recs) - 1; i >= 0; i-- {
		if err := s.write(ctx, c, recs[i].PageMessage()); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) write(ctx context.Context, c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	err := c.Write(ctx, websocket.MessageText, msg)
	if err != nil {
		s.cfg.Log.Debug("websocket closed", "err", err)
	}
	return err
}
