package broker_test

import (
	"testing"

	"github.com/skyswap/skyswap/agent/broker"
)

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic, drone, kind string
		ok                 bool
	}{
		{broker.Topics("d1").Events, "d1", "events", true},
		{broker.Topics("d-2_x").State, "d-2_x", "state", true},
		{"fleet/d1/state/extra", "", "", false},
		{"fleet/d1/", "", "", false},
		{"fleet/d1", "", "", false},
		{"fleet//state", "", "", false},
		{"fleet/d.1/state", "", "", false},
		{"other/d1/state", "", "", false},
	}
	for _, tt := range tests {
		drone, kind, ok := broker.ParseTopic(tt.topic)
		if drone != tt.drone || kind != tt.kind || ok != tt.ok {
			t.Errorf("ParseTopic(%q) = %q, %q, %v; want %q, %q, %v", tt.topic, drone, kind, ok, tt.drone, tt.kind, tt.ok)
		}
	}
}
