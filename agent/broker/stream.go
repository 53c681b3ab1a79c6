package broker

import (
	"bytes"
	"sync/atomic"
)

// stream is a QoS 0 topic with its own bounded queue and sender, so that
// a caller never waits for the network: paho's Publish blocks while the
// link is busy writing (a camera frame on a slow radio link).
type stream struct {
	c       *Client
	topic   string
	q       chan []byte
	dropped atomic.Uint64
}

func (s *stream) publish(payload []byte) error {
	select {
	case <-s.c.done:
		return ErrClosed
	default:
	}
	if !s.c.paho.IsConnectionOpen() {
		s.dropped.Add(1)
		return ErrNotConnected
	}
	p := bytes.Clone(payload)
	for {
		select {
		case s.q <- p:
			return nil
		default:
		}
		select {
		case <-s.q: // drop the oldest: the newest sample is worth more
			s.dropped.Add(1)
		default:
		}
	}
}

func (s *stream) run() {
	defer s.c.wg.Done()
	for {
		select {
		case p := <-s.q:
			if !s.c.paho.IsConnectionOpen() {
				s.dropped.Add(1)
				continue
			}
			tok := s.c.paho.Publish(s.topic, 0, false, p)
			select {
			case <-tok.Done(): // written (or failed): one message at a time
			case <-s.c.done:
				return
			}
			if tok.Error() != nil {
				s.dropped.Add(1)
			}
		case <-s.c.done:
			return
		}
	}
}
