package rig

import (
	"encoding/json"
	"sync"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/report"
)

// Ground watches one drone over MQTT as a ground station does: the latest
// telemetry and camera frame, and every event, kept in arrival order.
type Ground struct {
	peer *brokertest.Peer
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
func WatchDrone(url, drone string) (*Ground, error) {
	p, err := brokertest.Dial(url, brokertest.PeerOptions{})
	if err != nil {
		return nil, err
	}
	topics := broker.Topics(drone)
	tel, err := p.Subscribe(topics.Telemetry, 0)
	if err != nil {
		p.Close()
		return nil, err
	}
	ev, err := p.Subscribe(topics.Events, 1)
	if err != nil {
		p.Close()
		return nil, err
	}
	cam, err := p.Subscribe(topics.Camera, 0)
	if err != nil {
		p.Close()
		return nil, err
	}
	g := &Ground{peer: p, done: make(chan struct{})}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case m := <-tel:
				var t report.Telemetry
				if json.Unmarshal(m.Payload, &t) == nil {
					g.mu.Lock()
					g.tel, g.nTel = t, g.nTel+1
					g.mu.Unlock()
				}
			case m := <-cam:
				g.mu.Lock()
				g.frame, g.nFrame = m.Payload, g.nFrame+1
				g.mu.Unlock()
			case m := <-ev:
				var e report.Event
				if json.Unmarshal(m.Payload, &e) == nil {
					g.mu.Lock()
					g.events = append(g.events, e)
					g.mu.Unlock()
				}
			case <-g.done:
				return
			}
		}
	}()
	return g, nil
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
	g.peer.Close()
}
