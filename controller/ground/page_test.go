package ground_test

import (
	"context"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/controller/ground"
	"github.com/skyswap/skyswap/controller/ground/groundtest"
)

// Bounds for a loaded 2-core machine; on an idle one the page shows a
// message within milliseconds.
const (
	shortWait = 15 * time.Second
	longWait  = 60 * time.Second
)

// startStation starts a ground station on free loopback ports, its data
// in dir; cfg's addresses and data directory are filled in unless set.
func startStation(t *testing.T, cfg ground.Config) *ground.Station {
	t.Helper()
	for _, a := range []*string{&cfg.Listen, &cfg.BrokerListen, &cfg.RegistryListen} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := ground.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// replay replays the recorded flight under drones until the test ends
// or stop is called.
func replay(t *testing.T, broker string, drones ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := groundtest.Replay(ctx, groundtest.ReplayConfig{Broker: broker, Drones: drones, Duration: 10 * time.Minute}); err != nil && ctx.Err() == nil {
			t.Errorf("replay: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func text(t *testing.T, b *groundtest.Browser, sel string) string {
	t.Helper()
	s, err := groundtest.Eval[string](b, `document.querySelector(`+quote(sel)+`)?.textContent ?? ""`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

func wait(t *testing.T, b *groundtest.Browser, expr string, timeout time.Duration) {
	t.Helper()
	if err := b.Wait(expr, timeout); err != nil {
		t.Fatal(err)
	}
}

// moving reads each of sels every 50 ms for the time given and fails for
// one whose text never changed: live readouts change within it, though not
// necessarily between its two ends (a hover can end where it began, to
// the centimetre).
func moving(t *testing.T, b *groundtest.Browser, over time.Duration, sels ...string) {
	t.Helper()
	seen := make([]map[string]bool, len(sels))
	for i := range seen {
		seen[i] = map[string]bool{}
	}
	for end := time.Now().Add(over); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for i, sel := range sels {
			seen[i][text(t, b, sel)] = true
		}
	}
	for i, sel := range sels {
		if len(seen[i]) < 2 {
			t.Errorf("%s stayed %q for %v: it should move at 20 Hz", sel, slices.Collect(maps.Keys(seen[i])), over)
		}
	}
}

func noErrors(t *testing.T, b *groundtest.Browser, when string) {
	t.Helper()
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the page logged errors %s:\n%s", when, strings.Join(errs, "\n"))
	}
}

func screenshot(t *testing.T, b *groundtest.Browser, name string) {
	t.Helper()
	path := filepath.Join(t.ArtifactDir(), name)
	if err := b.Screenshot(path); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// TestPage drives the page in headless Chromium against a ground station
// fed with a recorded flight: it loads with no error, the instruments
// move, malformed messages show as warnings and break nothing, and the
// page reconnects by itself after the ground restarts.
func TestPage(t *testing.T) {
	b := groundtest.StartBrowser(t)
	dir := t.TempDir()
	st := startStation(t, ground.Config{DataDir: dir})
	stop := replay(t, st.BrokerURL, "d1")
	if err := b.Open(st.URL); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector('#conn').dataset.state === 'live'`, shortWait)
	wait(t, b, `document.querySelector('#fleet li[data-drone="d1"]') && document.querySelector('#alt').textContent !== '–'`, shortWait)
	moving(t, b, 2*time.Second, "#alt", "#motors")
	noErrors(t, b, "on load")

	// Bad input on the drone's topics: counted, shown, ignored.
	p, err := brokertest.Dial(st.BrokerURL, brokertest.PeerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, m := range []struct{ topic, payload string }{
		{"fleet/d1/telemetry", `{"alt_m":"very high"`},
		{"fleet/d1/telemetry", `<html>`},
		{"fleet/d1/events", `{"drone":"d1","command":"c1"}`},
		{"fleet/d1/camera", `not a jpeg`},
	} {
		p.MustPublish(t, m.topic, 1, false, []byte(m.payload))
	}
	wait(t, b, `/2 malformed telemetry messages from d1/.test(document.querySelector('#warnings [data-topic="telemetry"]')?.textContent)`, shortWait)
	wait(t, b, `/1 malformed events message from d1/.test(document.querySelector('#warnings [data-topic="events"]')?.textContent)`, shortWait)
	wait(t, b, `/1 malformed camera message/.test(document.querySelector('#warnings').textContent) && !document.querySelector('#warnings').hidden`, shortWait)
	alt := text(t, b, "#alt")
	wait(t, b, `document.querySelector('#alt').textContent !== `+quote(alt), shortWait)
	noErrors(t, b, "after malformed messages")
	screenshot(t, b, "page.png")

	// The ground restarts: the page says so, and comes back by itself.
	stop()
	u, _ := url.Parse(st.URL)
	bu, _ := url.Parse(st.BrokerURL)
	st.Close()
	wait(t, b, `document.querySelector('#conn').dataset.state === 'down'`, shortWait)
	st2 := startStation(t, ground.Config{DataDir: dir, Listen: u.Host, BrokerListen: bu.Host})
	replay(t, st2.BrokerURL, "d1")
	wait(t, b, `document.querySelector('#conn').dataset.state === 'live'`, shortWait)
	alt = text(t, b, "#alt")
	wait(t, b, `document.querySelector('#alt').textContent !== `+quote(alt), shortWait)
	b.Errors() // a reconnect logs the refused attempts
}
