package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
)

// Ground watches one drone over MQTT as a ground station does: the latest
// telemetry and camera frame, and every event, kept in arrival order.
type Ground struct {
	w    *push.Watcher
	done chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	tel    report.Telemetry
	nTel   int
	events []report.Event
	frame  []byte // the latest camera JPEG
	nFrame int
}

// WatchDrone subscribes to drone's telemetry, camera and events on the
// broker at url (anonymous).
func WatchDrone(ctx context.Context, url, drone string) (*Ground, error) {
	topics := broker.Topics(drone)
	w, err := push.Watch(ctx, push.Config{Broker: url}, topics.Telemetry, topics.Events, topics.Camera)
	if err != nil {
		return nil, fmt.Errorf("rig: watch %s: %w", drone, err)
	}
	g := &Ground{w: w, done: make(chan struct{})}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case m := <-w.Messages():
				g.keep(topics, m)
			case <-g.done:
				return
			}
		}
	}()
	return g, nil
}

// keep records one message.
func (g *Ground) keep(topics broker.TopicSet, m push.Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch m.Topic {
	case topics.Telemetry:
		var t report.Telemetry
		if json.Unmarshal(m.Payload, &t) == nil {
			g.tel, g.nTel = t, g.nTel+1
		}
	case topics.Camera:
		g.frame, g.nFrame = m.Payload, g.nFrame+1
	case topics.Events:
		var e report.Event
		if json.Unmarshal(m.Payload, &e) == nil {
			g.events = append(g.events, e)
		}
	}
}

// Telemetry returns the latest telemetry and how many messages came.
func (g *Ground) Telemetry() (report.Telemetry, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tel, g.nTel
}

// Camera returns the latest camera frame (a JPEG) and how many came.
func (g *Ground) Camera() ([]byte, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.frame, g.nFrame
}

// Events returns the events of command id ("" = all) received so far.
func (g *Ground) Events(id string) []report.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []report.Event
	for _, e := range g.events {
		if id == "" || e.Command == id {
			out = append(out, e)
		}
	}
	return out
}

// Close disconnects.
func (g *Ground) Close() {
	close(g.done)
	g.wg.Wait()
	g.w.Close()
}
