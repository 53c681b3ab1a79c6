package sim_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/imu"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// TestI2CBurstOverHTTP: POST /faults/i2c makes the named client's IMU
// reads fail over the socket as the real bus fails (simbus.ErrNACK through
// the driver), leaves another client's alone, counts them on GET, and
// DELETE ends the burst.
func TestI2CBurstOverHTTP(t *testing.T) {
	d := sim.New(sim.Config{NoCamera: true})
	run(t, d)
	path := serve(t, d)
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	ctx := testCtx(t, 20*time.Second)

	// v1 configures the IMU, as an owner's cold start does; both read it.
	dev := map[string]*imu.Dev{}
	for _, name := range []string{"flight-v1", "flight-v2"} {
		c, err := simbus.Dial(ctx, path, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if name == "flight-v1" {
			dev[name], err = imu.Init(ctx, c, nil)
		} else {
			dev[name], err = imu.Attach(c, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	call := func(method, query string, v any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+"/faults/i2c"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK && v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}

	var started sim.ActiveI2CBurst
	if code := call(http.MethodPost, "?for=1h&addr=0x68&client=flight-v2", &started); code != http.StatusOK {
		t.Fatalf("POST: %d", code)
	}
	if started.Client != "flight-v2" || started.Addr != "0x68" || started.Rate != 1 || started.Until == 0 {
		t.Fatalf("started %+v", started)
	}
	const n = 20
	for range n {
		if _, err := dev["flight-v2"].Read(); !errors.Is(err, simbus.ErrNACK) {
			t.Fatalf("v2's read in the burst: %v, want simbus.ErrNACK", err)
		}
		if _, err := dev["flight-v1"].Read(); err != nil {
			t.Fatalf("v1's read during v2's burst: %v", err)
		}
	}
	var got sim.I2CFaults
	call(http.MethodGet, "", &got)
	if got.Failed != n || got.ByClient["flight-v2"] != n || got.ByClient["flight-v1"] != 0 || got.ByAddr["0x68"] != n || len(got.Active) != 1 {
		t.Fatalf("GET /faults/i2c = %+v, want %d failed, all v2's at 0x68, one burst on", got, n)
	}
	call(http.MethodDelete, "?client=flight-v2", &got)
	if len(got.Active) != 0 {
		t.Fatalf("after DELETE: %+v, want no burst on", got)
	}
	if _, err := dev["flight-v2"].Read(); err != nil {
		t.Fatalf("v2's read after the burst ended: %v", err)
	}

	for _, bad := range []string{"", "?for=1s&rate=2", "?for=1s&addr=0x99"} {
		if code := call(http.MethodPost, bad, nil); code != http.StatusBadRequest {
			t.Errorf("POST /faults/i2c%s: %d, want 400", bad, code)
		}
	}
}
