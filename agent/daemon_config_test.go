package agent

import "testing"

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
