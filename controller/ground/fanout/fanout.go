// Package fanout sends each message to every subscriber without ever
// waiting for one: a subscriber has a bounded queue, and when it is full
// the oldest message in it is dropped and counted. So a browser that
// reads slowly, or not at all, never slows the ground's MQTT intake or
// another browser; it only misses messages, and learns that it did
// (Sub.Lagged) so it can start again from a snapshot.
package fanout

import (
	"sync"
	"sync/atomic"
)

// DefaultQueue is a subscriber's queue length when Subscribe is given 0:
// about 2.5 s of 10 drones' telemetry at 20 Hz.
const DefaultQueue = 512

// Hub is a set of subscribers. The zero value is ready to use.
type Hub struct {
	mu      sync.Mutex
	subs    map[*Sub]struct{}
	dropped atomic.Uint64
}

// Sub is one subscriber.
type Sub struct {
	h       *Hub
	q       chan []byte
	dropped atomic.Uint64
	lagged  atomic.Bool
}

// Subscribe adds a subscriber with a queue of size messages (0:
// DefaultQueue). Close it when done.
func (h *Hub) Subscribe(size int) *Sub {
	if size <= 0 {
		size = DefaultQueue
	}
	s := &Sub{h: h, q: make(chan []byte, size)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[*Sub]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish queues msg for every subscriber and returns without waiting:
// a full queue loses its oldest message. msg must not be changed
// afterwards; subscribers share it.
func (h *Hub) Publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.push(msg)
	}
}

// Subscribers returns how many subscribers there are.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Dropped returns how many messages were dropped, all subscribers
// together, since the Hub was made.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// push queues msg, dropping the oldest while the queue is full. Publish
// holds the Hub's lock, so push is the only sender.
func (s *Sub) push(msg []byte) {
	for {
		select {
		case s.q <- msg:
			return
		default:
		}
		select {
		case <-s.q:
			s.dropped.Add(1)
			s.h.dropped.Add(1)
			s.lagged.Store(true)
		default:
		}
	}
}

// C is the subscriber's queue.
func (s *Sub) C() <-chan []byte { return s.q }

// Dropped returns how many of this subscriber's messages were dropped.
func (s *Sub) Dropped() uint64 { return s.dropped.Load() }

// Lagged reports whether messages were dropped since the last call, and
// clears it. A subscriber that lagged should empty its queue (Drain) and
// start again from a fresh snapshot taken after that.
func (s *Sub) Lagged() bool { return s.lagged.Swap(false) }

// Drain discards what is queued.
func (s *Sub) Drain() {
	for {
		select {
		case <-s.q:
		default:
			return
		}
	}
}

// Close removes the subscriber; nothing more is queued for it.
func (s *Sub) Close() {
	s.h.mu.Lock()
	delete(s.h.subs, s)
	s.h.mu.Unlock()
}
