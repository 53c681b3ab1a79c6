package broker

import (
	"encoding/json"
	"fmt"
	"strings"
)

// TopicSet is one drone's topics (DESIGN.md, "MQTT contract").
type TopicSet struct {
	Cmd       string // fleet/<drone>/cmd: commands, QoS 1; the agent subscribes
	State     string // fleet/<drone>/state: retained, QoS 1; the last will
	Events    string // fleet/<drone>/events: update phases, QoS 1
	Telemetry string // fleet/<drone>/telemetry: QoS 0, ~20 Hz
	Camera    string // fleet/<drone>/camera: JPEG frames, QoS 0
}

// Topics returns drone's topics. It does not check drone: CheckDrone
// does (and Connect calls it).
func Topics(drone string) TopicSet {
	p := "fleet/" + drone + "/"
	return TopicSet{
		Cmd:       p + "cmd",
		State:     p + "state",
		Events:    p + "events",
		Telemetry: p + "telemetry",
		Camera:    p + "camera",
	}
}

// ParseTopic splits a topic of the contract, fleet/<drone>/<kind>, into
// its drone id and kind (cmd, state, events, ...); ok is false for any
// other topic, or one whose drone id fails CheckDrone.
func ParseTopic(topic string) (drone, kind string, ok bool) {
	rest, ok1 := strings.CutPrefix(topic, "fleet/")
	drone, kind, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || kind == "" || strings.Contains(kind, "/") || CheckDrone(drone) != nil {
		return "", "", false
	}
	return drone, kind, true
}

// MaxDroneLen is the longest drone id.
const MaxDroneLen = 64

// CheckDrone returns nil if id can be a drone id: 1 to 64 characters from
// [A-Za-z0-9_-]. That keeps it one topic segment with no MQTT wildcard
// (+, #), no separator, and usable in a Mosquitto ACL pattern (%u, %c).
func CheckDrone(id string) error {
	if id == "" {
		return fmt.Errorf("empty: set the drone id (1 to %d characters from [A-Za-z0-9_-])", MaxDroneLen)
	}
	if len(id) > MaxDroneLen {
		return fmt.Errorf("%d characters, more than %d", len(id), MaxDroneLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%q has %q at byte %d: only [A-Za-z0-9_-] may appear", id, c, i)
		}
	}
	return nil
}

// presence is the default state payload: {"drone":"d1","online":true}.
type presence struct {
	Drone  string `json:"drone"`
	Online bool   `json:"online"`
}

// DefaultOnline is the state Connect publishes before the first
// PublishState when Config.OnlinePayload is nil.
func DefaultOnline(drone string) []byte { return presenceJSON(drone, true) }

// DefaultOffline is the last will, and what Close publishes, when
// Config.WillPayload is nil.
func DefaultOffline(drone string) []byte { return presenceJSON(drone, false) }

func presenceJSON(drone string, online bool) []byte {
	b, err := json.Marshal(presence{Drone: drone, Online: online})
	if err != nil {
		panic(err) // a struct of a string and a bool always marshals
	}
	return b
}
