package ground_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/broker"
	"github.com/skyswap/skyswap/controller/ground"
)

func TestStartRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  ground.Config
		msg  string
	}{
		{"page on every interface without a token", ground.Config{Listen: ":0"}, "give a token"},
		{"page on a LAN address without a token", ground.Config{Listen: "192.0.2.1:8080"}, "give a token"},
		{"TLS without client certificates is not enough", ground.Config{Listen: "0.0.0.0:0", TLSCert: "c", TLSKey: "k"}, "give a token"},
		{"certificate without key", ground.Config{TLSCert: "c"}, "both the TLS certificate and its key"},
		{"client CA without TLS", ground.Config{TLSClientCA: "ca"}, "client certificates need TLS"},
		{"unreadable TLS files", ground.Config{TLSCert: "/nonexistent.pem", TLSKey: "/nonexistent.key"}, "ground: TLS"},
		{"no host:port", ground.Config{Listen: "8080"}, "give host:port"},
		{"key file missing", ground.Config{Listen: "127.0.0.1:0", KeyFile: "/nonexistent/ground.key"}, "ground: key"},
		{"broker on every interface without passwords", ground.Config{Listen: "127.0.0.1:0", BrokerListen: "0.0.0.0:0"}, "-mqtt-users"},
		{"broker passwords without the ground", ground.Config{Listen: "127.0.0.1:0", BrokerListen: "127.0.0.1:0",
			BrokerPasswords: map[string]string{"d1": "x"}}, `no user "ground"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tc.cfg.DataDir = t.TempDir()
			st, err := ground.Start(ctx, tc.cfg)
			if err == nil {
				st.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%v, want it to say %q", err, tc.msg)
			}
		})
	}
}

// TestKeyAndToken: the first start makes the ground's key, the next one
// keeps it; with a token, a push without it is refused with 401.
func TestKeyAndToken(t *testing.T) {
	dir := t.TempDir()
	st := startStation(t, ground.Config{DataDir: dir, Token: "s3cret"})
	pub, err := command.ReadPublicKey(filepath.Join(dir, "ground.pub"))
	if err != nil || command.KeyID(pub) != st.KeyID || st.PublicKeyFile != filepath.Join(dir, "ground.pub") {
		t.Fatalf("key %s (%v), station says %s in %s", command.KeyID(pub), err, st.KeyID, st.PublicKeyFile)
	}
	push := func(token string) int {
		req, _ := http.NewRequest("POST", st.URL+"api/drones/d1/push", strings.NewReader(`{"image":"flight:v2"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := push(""); code != http.StatusUnauthorized {
		t.Errorf("push without the token: %d, want 401", code)
	}
	if code := push("s3cret"); code != http.StatusNotFound { // authorized; the registry has no flight:v2
		t.Errorf("push with the token: %d, want 404 (no such image)", code)
	}
	id := st.KeyID
	st.Close()
	st = startStation(t, ground.Config{DataDir: dir})
	if st.KeyID != id {
		t.Errorf("the key changed across a restart: %s, then %s", id, st.KeyID)
	}
	if _, err := os.Stat(filepath.Join(dir, "registry", "manifests.log")); err != nil {
		t.Errorf("the registry keeps nothing in the data directory: %v", err)
	}
}

// TestBrokerPasswords: with the embedded broker's users, the station
// follows the fleet as the ground user, and a drone with its password
// reaches the page's picture.
func TestBrokerPasswords(t *testing.T) {
	pw := map[string]string{broker.GroundUser: "g-secret", "d1": "d1-secret"}
	st := startStation(t, ground.Config{BrokerPasswords: pw})
	if _, err := brokertest.Dial(st.BrokerURL, brokertest.PeerOptions{}); err == nil {
		t.Fatal("an anonymous client connected")
	}
	d1, err := brokertest.Dial(st.BrokerURL, brokertest.PeerOptions{Username: "d1", Password: pw["d1"]})
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()
	d1.MustPublish(t, "fleet/d1/state", 1, true, []byte(`{"drone":"d1","online":true}`))
	deadline := time.Now().Add(shortWait)
	for {
		res, err := http.Get(st.URL + "api/stats")
		if err != nil {
			t.Fatal(err)
		}
		var stats struct{ Fleet struct{ Drones int } }
		json.NewDecoder(res.Body).Decode(&stats)
		res.Body.Close()
		if stats.Fleet.Drones == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the station saw %d drones, want d1", stats.Fleet.Drones)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
