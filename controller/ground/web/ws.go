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
	if err := s.write(ctx, c, s.fleet.Snapshot(s.cfg.Now())); err != nil {
		return
	}
	for {
		select {
		case msg := <-sub.C():
			if sub.Lagged() {
				// Behind: what is queued is stale. Start again from now.
				sub.Drain()
				lag := fmt.Appendf(nil, `{"type":"lagged","dropped":%d}`, sub.Dropped())
				if s.write(ctx, c, lag) != nil || s.write(ctx, c, s.fleet.Snapshot(s.cfg.Now())) != nil {
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

func (s *server) write(ctx context.Context, c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	err := c.Write(ctx, websocket.MessageText, msg)
	if err != nil {
		s.cfg.Log.Debug("websocket closed", "err", err)
	}
	return err
}
