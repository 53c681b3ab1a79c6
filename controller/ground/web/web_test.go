package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/skyswap/skyswap/controller/ground/fanout"
	"github.com/skyswap/skyswap/controller/ground/fleet"
	"github.com/skyswap/skyswap/controller/ground/web"
)

// operator is a fake web.Operator that records what it was asked.
type operator struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (o *operator) Images(context.Context) ([]string, error) {
	return []string{"flight:v1", "flight:v2"}, nil
}

func (o *operator) Push(_ context.Context, drone, image string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "push "+drone+" "+image)
	return "cmd-1", o.err
}

func (o *operator) Rollback(_ context.Context, drone string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "rollback "+drone)
	return "cmd-2", o.err
}

type env struct {
	srv *httptest.Server
	f   *fleet.Fleet
	hub *fanout.Hub
	op  *operator
}

func serve(t *testing.T, cfg web.Config) *env {
	t.Helper()
	e := &env{f: fleet.New(fleet.Config{}), hub: &fanout.Hub{}, op: &operator{}}
	e.srv = httptest.NewServer(web.New(cfg, e.f, e.hub, e.op))
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request; hdr are header name, value pairs.
func (e *env) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

const jsonCT = "Content-Type"

func TestToken(t *testing.T) {
	e := serve(t, web.Config{Token: "s3cret"})
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		code                     int
	}{
		{"push without the token", "POST", "/api/drones/d1/push", `{"image":"flight:v2"}`, []string{jsonCT, "application/json"}, 401},
		{"push with a wrong token", "POST", "/api/drones/d1/push", `{"image":"flight:v2"}`, []string{jsonCT, "application/json", "Authorization", "Bearer nope"}, 401},
		{"push with the token", "POST", "/api/drones/d1/push", `{"image":"flight:v2"}`, []string{jsonCT, "application/json", "Authorization", "Bearer s3cret"}, 202},
		{"rollback without the token", "POST", "/api/drones/d1/rollback", `{}`, []string{jsonCT, "application/json"}, 401},
		{"feed without the token", "GET", "/ws", "", nil, 401},
		{"stats without the token", "GET", "/api/stats", "", nil, 401},
		{"camera without the token", "GET", "/api/drones/d1/camera.jpg", "", nil, 401},
		{"the page itself", "GET", "/", "", nil, 200},
		{"its script", "GET", "/static/app.js", "", nil, 200},
		{"health", "GET", "/healthz", "", nil, 200},
		{"log in with a wrong token", "GET", "/?token=nope", "", nil, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if res, body := e.do(t, tc.method, tc.path, tc.body, tc.hdr...); res.StatusCode != tc.code {
				t.Errorf("%d %s, want %d", res.StatusCode, body, tc.code)
			}
		})
	}
	if len(e.op.calls) != 1 {
		t.Errorf("operator calls %q, want the one push with the token", e.op.calls)
	}
	// A browser logs in once; the cookie carries the token after.
	res, _ := e.do(t, "GET", "/?token=s3cret", "")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("log in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == web.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v, want HttpOnly and SameSite=Strict", cookie)
	}
	if res, body := e.do(t, "GET", "/api/stats", "", "Cookie", cookie.String()); res.StatusCode != 200 {
		t.Errorf("stats with the cookie: %d %s", res.StatusCode, body)
	}
}

// TestCrossSite: another site cannot make a browser push, and a page
// reached by another name (DNS rebinding) is refused without a token.
func TestCrossSite(t *testing.T) {
	e := serve(t, web.Config{LoopbackHosts: true})
	push := func(hdr ...string) int {
		res, _ := e.do(t, "POST", "/api/drones/d1/push", `{"image":"flight:v2"}`, hdr...)
		return res.StatusCode
	}
	if code := push(jsonCT, "application/json", "Sec-Fetch-Site", "same-origin"); code != 202 {
		t.Errorf("same-origin push: %d", code)
	}
	if code := push(jsonCT, "application/json", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); code != 403 {
		t.Errorf("cross-site push: %d, want 403", code)
	}
	if code := push(jsonCT, "application/json", "Origin", "https://evil.example"); code != 403 {
		t.Errorf("push from another origin (no Sec-Fetch-Site): %d, want 403", code)
	}
	if code := push(jsonCT, "text/plain"); code != 400 {
		t.Errorf("push as a form would send it: %d, want 400", code)
	}
	if res, _ := e.do(t, "GET", "/", "", "Host", "evil.example"); res.StatusCode != 403 {
		t.Errorf("Host evil.example: %d, want 403", res.StatusCode)
	}
	if res, _ := e.do(t, "GET", "/", "", "Host", "localhost:8080"); res.StatusCode != 200 {
		t.Errorf("Host localhost: %d", res.StatusCode)
	}
	if len(e.op.calls) != 1 {
		t.Errorf("operator calls %q, want the same-origin push only", e.op.calls)
	}
	hdr := http.Header{"Origin": {"https://evil.example"}}
	if c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: hdr}); err == nil {
		c.CloseNow()
		t.Error("a WebSocket from another origin was accepted")
	}
}

func TestOperatorErrors(t *testing.T) {
	e := serve(t, web.Config{})
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: drone d1 has a push in flight", web.ErrBusy), 409},
		{fmt.Errorf("%w: no such tag", web.ErrNotFound), 404},
		{fmt.Errorf("%w: bad drone id", web.ErrInvalid), 400},
		{fmt.Errorf("the broker is down"), 502},
	} {
		e.op.err = tc.err
		res, body := e.do(t, "POST", "/api/drones/d1/rollback", `{}`, jsonCT, "application/json")
		if res.StatusCode != tc.code || !strings.Contains(body, tc.err.Error()) {
			t.Errorf("%v: %d %s, want %d with the error", tc.err, res.StatusCode, body, tc.code)
		}
	}
	e.op.err = nil
	for _, body := range []string{``, `{"image":`, `{"image":"x","extra":1}`, `{}`} {
		if res, out := e.do(t, "POST", "/api/drones/d1/push", body, jsonCT, "application/json"); res.StatusCode != 400 {
			t.Errorf("push body %q: %d %s", body, res.StatusCode, out)
		}
	}
}

func TestCamera(t *testing.T) {
	e := serve(t, web.Config{})
	if res, _ := e.do(t, "GET", "/api/drones/d1/camera.jpg", ""); res.StatusCode != 404 {
		t.Errorf("no frame yet: %d", res.StatusCode)
	}
	e.f.Handle("fleet/d1/camera", []byte("\xff\xd8\xff\xd9"), time.Now())
	res, body := e.do(t, "GET", "/api/drones/d1/camera.jpg", "")
	if res.StatusCode != 200 || body != "\xff\xd8\xff\xd9" || res.Header.Get("Content-Type") != "image/jpeg" || res.Header.Get("X-Frame-Seq") != "1" {
		t.Errorf("frame: %d %q %v", res.StatusCode, body, res.Header)
	}
}

// TestAssetsLocal: the page loads nothing from elsewhere.
func TestAssetsLocal(t *testing.T) {
	e := serve(t, web.Config{})
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`)
	for _, p := range []string{"/", "/static/app.js", "/static/style.css"} {
		res, body := e.do(t, "GET", p, "")
		if res.StatusCode != 200 || external.MatchString(body) {
			t.Errorf("%s: %d, external reference %q", p, res.StatusCode, external.FindString(body))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}
	for _, p := range []string{"/static/uplot/uPlot.iife.min.js", "/static/uplot/uPlot.min.css"} {
		if res, body := e.do(t, "GET", p, ""); res.StatusCode != 200 || len(body) < 1000 {
			t.Errorf("%s: %d, %d bytes", p, res.StatusCode, len(body))
		}
	}
}

func dial(t *testing.T, e *env) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFeedSlowBrowser: a browser that stops reading loses messages
// (dropped, counted) but never holds up the publisher or another browser,
// and when it reads again it is told and starts from a fresh snapshot.
func TestFeedSlowBrowser(t *testing.T) {
	const queue, bursts, burst = 2048, 20, 1000
	e := serve(t, web.Config{Queue: queue})
	e.f.Handle("fleet/d1/state", []byte(`{"drone":"d1","online":true}`), time.Now())
	fast, slow := dial(t, e), dial(t, e)
	for _, c := range []*websocket.Conn{fast, slow} {
		if m := read(t, c); m["type"] != fleet.TypeSnapshot {
			t.Fatalf("first message %v, want the snapshot", m["type"])
		}
	}
	for e.hub.Subscribers() != 2 {
		time.Sleep(time.Millisecond)
	}
	pad := strings.Repeat("x", 1000)
	var received atomic.Int64
	go func() {
		for i := range bursts * burst {
			if m := read(t, fast); m["i"] != float64(i) {
				t.Errorf("fast browser: message %v, want %d", m, i)
				return
			}
			received.Add(1)
		}
	}()
	for b := range bursts {
		for i := range burst {
			// 1 KiB each: 20 MiB in all, more than the sockets buffer.
			e.hub.Publish(fmt.Appendf(nil, `{"type":"test","i":%d,"pad":"%s"}`, b*burst+i, pad))
		}
		// The fast browser keeps up between bursts; the slow one reads
		// nothing at all.
		deadline := time.Now().Add(20 * time.Second)
		for received.Load() < int64((b+1)*burst) && !t.Failed() {
			if time.Now().After(deadline) {
				t.Fatalf("the fast browser got %d of %d", received.Load(), (b+1)*burst)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if t.Failed() {
		return
	}
	if d := e.hub.Dropped(); d < bursts*burst/2 {
		t.Fatalf("the stalled browser lost %d of %d: it should have lost all but its queue and what the sockets buffer", d, bursts*burst)
	}
	// The slow one reads again: its queue of old messages, then it is
	// told it lagged and gets a snapshot.
	for i := 0; ; i++ {
		m := read(t, slow)
		if m["type"] == "lagged" {
			if m["dropped"].(float64) < 1 {
				t.Errorf("lagged %v", m)
			}
			break
		}
		if i > bursts*burst-int(e.hub.Dropped()) {
			t.Fatalf("no lagged message after %d messages", i)
		}
	}
	if m := read(t, slow); m["type"] != fleet.TypeSnapshot {
		t.Fatalf("after lagged: %v, want a snapshot", m["type"])
	}
}

func TestStats(t *testing.T) {
	e := serve(t, web.Config{Stats: func() map[string]any { return map[string]any{"mqtt_messages": 7} }})
	dial(t, e)
	for e.hub.Subscribers() != 1 {
		time.Sleep(time.Millisecond)
	}
	_, body := e.do(t, "GET", "/api/stats", "")
	var st map[string]any
	json.Unmarshal([]byte(body), &st)
	if st["clients"] != float64(1) || st["mqtt_messages"] != float64(7) || st["dropped"] != float64(0) {
		t.Errorf("stats %s", body)
	}
}
