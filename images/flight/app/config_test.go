package app

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := Load(env(map[string]string{"FLIGHT_BUS": "sim:/s"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Start != StartCold || c.Epoch != 1 || c.RateHz != 400 || c.AltM != 2 || c.HoverS != 5 ||
			c.Pattern != "box" || c.RTPriority != 0 || !strings.HasPrefix(c.Instance, "flight-") {
			t.Fatalf("defaults: %+v", c)
		}
	})
	t.Run("all set", func(t *testing.T) {
		c, err := Load(env(map[string]string{
			"FLIGHT_BUS": "/dev/i2c-1", "FLIGHT_INSTANCE": "v2", "FLIGHT_START": "attach", "FLIGHT_EPOCH": "7",
			"FLIGHT_RATE_HZ": "250", "FLIGHT_ALT_M": "3.5", "FLIGHT_HOVER_S": "0", "FLIGHT_PATTERN": "hover",
			"FLIGHT_RT_PRIO": "50", "FLIGHT_LOG_S": "0.5",
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{Bus: "/dev/i2c-1", Instance: "v2", Start: StartAttach, Epoch: 7, RateHz: 250, AltM: 3.5,
			HoverS: 0, Pattern: "hover", RTPriority: 50, LogEvery: 0.5, App: "flight", OnTerm: "land",
			CameraSPI: "/dev/spidev0.0"}
		if c != want {
			t.Fatalf("got %+v\nwant %+v", c, want)
		}
		if m := c.Mission(); m.AltM != 3.5 || m.HoverS != 0 || m.Pattern != "hover" {
			t.Fatalf("mission %+v", m)
		}
	})
	t.Run("camera", func(t *testing.T) {
		defer func(f string) { Features = f }(Features)
		for _, tc := range []struct {
			features, bus, setting, spi string
			want                        bool
			wantSPI                     string
		}{
			{"", "sim:/s", "", "", false, "sim:/s"},
			{"camera", "sim:/s", "", "", true, "sim:/s"},
			{"camera", "/dev/i2c-1", "", "", true, "/dev/spidev0.0"},
			{"camera", "/dev/i2c-1", "off", "/dev/spidev1.0", false, "/dev/spidev1.0"},
			{"x,camera", "sim:/s", "on", "", true, "sim:/s"},
		} {
			Features = tc.features
			c, err := Load(env(map[string]string{"FLIGHT_BUS": tc.bus, "FLIGHT_CAMERA": tc.setting, "FLIGHT_CAMERA_SPI": tc.spi}))
			if err != nil || c.Camera != tc.want || c.CameraSPI != tc.wantSPI {
				t.Errorf("features %q, FLIGHT_CAMERA=%q: camera %v on %q (%v), want %v on %q", tc.features, tc.setting, c.Camera, c.CameraSPI, err, tc.want, tc.wantSPI)
			}
		}
	})
	bad := []struct{ key, val string }{
		{"FLIGHT_RATE_HZ", "10"}, {"FLIGHT_RATE_HZ", "x"}, {"FLIGHT_ALT_M", "50"}, {"FLIGHT_HOVER_S", "-2"},
		{"FLIGHT_EPOCH", "-1"}, {"FLIGHT_EPOCH", "0"}, {"FLIGHT_START", "hot"}, {"FLIGHT_PATTERN", "flip"},
		{"FLIGHT_RT_PRIO", "100"}, {"FLIGHT_LOG_S", "0"}, {"FLIGHT_ON_TERM", "crash"}, {"FLIGHT_CAMERA", "yes"},
		{"FLIGHT_CAMERA", "on"}, // this test binary is built without the camera feature
		{"FLIGHT_NATS", ""},     // with FLIGHT_START=candidate below
	}
	for _, b := range bad {
		t.Run(b.key+"="+b.val, func(t *testing.T) {
			kv := map[string]string{"FLIGHT_BUS": "sim:/s", b.key: b.val}
			if b.key == "FLIGHT_NATS" {
				kv["FLIGHT_START"] = "candidate"
			}
			_, err := Load(env(kv))
			if err == nil || !strings.Contains(err.Error(), b.key) {
				t.Fatalf("err = %v, want one naming %s", err, b.key)
			}
		})
	}
}
