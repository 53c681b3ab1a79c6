package fanout

import (
	"fmt"
	"testing"
	"time"
)

// TestStalledSubscriber: one subscriber never reads; Publish never waits
// for it, the other gets everything, and the stalled one keeps the newest
// messages and knows it lost the rest.
func TestStalledSubscriber(t *testing.T) {
	var h Hub
	stalled := h.Subscribe(4)
	defer stalled.Close()
	reader := h.Subscribe(1000)
	defer reader.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			h.Publish(fmt.Appendf(nil, "%d", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish waited for a subscriber that does not read")
	}
	for i := range 1000 {
		if got := string(<-reader.C()); got != fmt.Sprint(i) {
			t.Fatalf("reader got %s, want %d", got, i)
		}
	}
	if reader.Dropped() != 0 || reader.Lagged() {
		t.Errorf("the reader lost %d", reader.Dropped())
	}
	if stalled.Dropped() != 996 || h.Dropped() != 996 || !stalled.Lagged() || stalled.Lagged() {
		t.Errorf("stalled: dropped %d (hub %d), want 996, and Lagged once", stalled.Dropped(), h.Dropped())
	}
	for i := 996; i < 1000; i++ {
		if got := string(<-stalled.C()); got != fmt.Sprint(i) {
			t.Errorf("stalled kept %s, want the newest, %d", got, i)
		}
	}
}

func TestSubscribeClose(t *testing.T) {
	var h Hub
	a, b := h.Subscribe(0), h.Subscribe(0)
	if cap(a.q) != DefaultQueue || h.Subscribers() != 2 {
		t.Fatalf("queue %d, %d subscribers", cap(a.q), h.Subscribers())
	}
	a.Close()
	h.Publish([]byte("x"))
	if len(a.C()) != 0 || len(b.C()) != 1 || h.Subscribers() != 1 {
		t.Errorf("after Close: a has %d, b %d", len(a.C()), len(b.C()))
	}
	h.Publish([]byte("y"))
	b.Drain()
	if len(b.C()) != 0 {
		t.Error("Drain left messages")
	}
}

// TestConcurrent is for the race detector: publishers, readers that come
// and go.
func TestConcurrent(t *testing.T) {
	var h Hub
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				h.Publish([]byte("m"))
			}
		}
	}()
	for range 50 {
		s := h.Subscribe(8)
		<-s.C()
		s.Lagged()
		s.Close()
	}
	close(stop)
	<-done
}
