package agent

import (
	"maps"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/agent/broker"
)

func TestLoadDaemonConfigAppNATSURL(t *testing.T) {
	required := map[string]string{
		"AGENT_DRONE":        "d1",
		"AGENT_BROKER_URL":   "tcp://127.0.0.1:1883",
		"AGENT_TRUSTED_KEYS": "k=/etc/skyswap/ground.pub",
	}
	for _, tc := range []struct {
		name, value, want string
	}{
		{"unset: the agent's own on-board URL", "", ""},
		{"through a relay", "nats://127.0.0.1:4223", "nats://127.0.0.1:4223"},
		{"spaces trimmed", "  nats://127.0.0.1:4223 ", "nats://127.0.0.1:4223"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"AGENT_APP_NATS_URL": tc.value, "AGENT_NATS_URL": "nats://127.0.0.1:4222"}
			for k, v := range required {
				env[k] = v
			}
			c, err := LoadDaemonConfig(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.AppNATSURL != tc.want {
				t.Errorf("AppNATSURL = %q, want %q", c.AppNATSURL, tc.want)
			}
			if c.NATSURL != "nats://127.0.0.1:4222" {
				t.Errorf("NATSURL = %q: AGENT_APP_NATS_URL must not change the agent's own", c.NATSURL)
			}
		})
	}
}

func TestLoadDaemonConfigLabels(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  map[string]string
		bad   bool
	}{
		{"", nil, false},
		{"site=field-a,role=survey", map[string]string{"site": "field-a", "role": "survey"}, false},
		{"site", nil, true},
		{"site=a b", nil, true},
	} {
		env := map[string]string{"AGENT_DRONE": "d1", "AGENT_BROKER_URL": "tcp://127.0.0.1:1883",
			"AGENT_TRUSTED_KEYS": "k=/etc/skyswap/ground.pub", "AGENT_LABELS": tc.value}
		c, err := LoadDaemonConfig(func(k string) string { return env[k] })
		if (err != nil) != tc.bad {
			t.Errorf("AGENT_LABELS=%q: err %v, want error %v", tc.value, err, tc.bad)
			continue
		}
		if !tc.bad && !maps.Equal(c.Labels, tc.want) {
			t.Errorf("AGENT_LABELS=%q: Labels %v, want %v", tc.value, c.Labels, tc.want)
		}
	}
}

func TestOfflineState(t *testing.T) {
	if got, want := string(OfflineState("d1", nil)), string(broker.DefaultOffline("d1")); got != want {
		t.Errorf("OfflineState without labels = %s, want the default %s", got, want)
	}
	if got, want := string(OfflineState("d1", map[string]string{"site": "a"})), `{"drone":"d1","online":false,"labels":{"site":"a"}}`; got != want {
		t.Errorf("OfflineState = %s, want %s", got, want)
	}
}

func TestLoadDaemonConfigAppRT(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  float64
		bad   bool
	}{
		{"", 0, false},
		{"200", 200, false},
		{"0.5", 0, true},  // below 1 ms: no loop runs on that
		{"401", 0, true},  // two instances would take most of the machine's
		{"fast", 0, true}, // not a number
	} {
		env := map[string]string{"AGENT_DRONE": "d1", "AGENT_BROKER_URL": "tcp://127.0.0.1:1883",
			"AGENT_TRUSTED_KEYS": "k=/etc/skyswap/ground.pub", "AGENT_APP_RT_MS": tc.value}
		c, err := LoadDaemonConfig(func(k string) string { return env[k] })
		if (err != nil) != tc.bad {
			t.Errorf("AGENT_APP_RT_MS=%q: err %v, want error %v", tc.value, err, tc.bad)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "AGENT_APP_RT_MS") {
			t.Errorf("AGENT_APP_RT_MS=%q: %v, want an error naming the setting", tc.value, err)
		}
		if !tc.bad && c.AppRTMs != tc.want {
			t.Errorf("AGENT_APP_RT_MS=%q: AppRTMs = %v, want %v", tc.value, c.AppRTMs, tc.want)
		}
	}
}
