// Package groundtest is what tests and benchmarks of the ground station
// need: Debian's Chromium, headless, driven by chromedp, with every console
// error and uncaught exception of the page kept (Browser); and a flight's
// telemetry, recorded from the real stack, to replay over MQTT under as
// many drone ids as a test wants (Replay).
package groundtest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of Debian's chromium (apt-get install
// chromium), or "" if it is not installed.
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is a headless Chromium with one tab.
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx    context.Context
	cancel func()

	mu     sync.Mutex
	errors []string
}

// BrowserConfig configures NewBrowser. Every zero value means the
// default documented on the field.
type BrowserConfig struct {
	// Dir holds the browser's fresh profile; required.
	Dir string
	// Nice is the niceness Chromium runs at (nice -n); 0 means as this
	// process. A test that watches a flight on the same machine gives its
	// browser less CPU than the flight, whose timing the test does not
	// judge the browser by.
	Nice int
}

// NewBrowser starts Chromium headless with a fresh profile in cfg.Dir.
// Its flags keep it off the network but for the pages it is sent to: no
// background requests, component updates, sync or QUIC, which otherwise
// flood a machine without internet with refused connections. Close it.
func NewBrowser(ctx context.Context, cfg BrowserConfig) (*Browser, error) {
	path := Chromium()
	if path == "" {
		return nil, errors.New("groundtest: chromium is not installed: apt-get install chromium (scripts/dev-setup.sh chromium)")
	}
	if cfg.Nice != 0 {
		// chromedp runs one executable: a script that runs chromium
		// under nice, so its every process inherits the niceness.
		wrapper := filepath.Join(cfg.Dir, "chromium-nice")
		script := fmt.Sprintf("#!/bin/sh\nexec nice -n %d %s \"$@\"\n", cfg.Nice, path)
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			return nil, err
		}
		path = wrapper
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(filepath.Join(cfg.Dir, "profile")),
		chromedp.WindowSize(1400, 1200),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	b := &Browser{Ctx: tab, cancel: func() { cancelTab(); cancelAlloc() }}
	// Subscribe before the first page: nothing it writes is missed.
	messages := chromedp.Console(tab)
	if err := chromedp.Do(tab); err != nil { // starts the browser
		b.Close()
		return nil, fmt.Errorf("groundtest: start %s: %w", path, err)
	}
	go b.keep(messages)
	return b, nil
}

// keep keeps the page's errors: console.error, uncaught exceptions, and
// the browser's own error entries (a failed load, a CSP violation).
func (b *Browser) keep(messages iter.Seq2[chromedp.ConsoleMessage, error]) {
	for m, err := range messages {
		if err != nil {
			return
		}
		if m.Type != chromedp.ConsoleError && !m.IsException() {
			continue
		}
		b.mu.Lock()
		b.errors = append(b.errors, m.String()+" "+m.URL)
		b.mu.Unlock()
	}
}

// Errors returns the page's errors so far, and forgets them.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errors
	b.errors = nil
	return e
}

// Close ends Chromium.
func (b *Browser) Close() { b.cancel() }

// StartBrowser is NewBrowser for a test, at niceness 10, closed when it
// ends. Without chromium the test is skipped, unless the environment
// variable CI is set: then it fails, since CI installs it.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	if Chromium() == "" {
		msg := "chromium is not installed: apt-get install chromium (scripts/dev-setup.sh chromium)"
		if os.Getenv("CI") != "" {
			t.Fatalf("%s (CI is set: CI must install it)", msg)
		}
		t.Skip(msg)
	}
	b, err := NewBrowser(context.Background(), BrowserConfig{Dir: t.TempDir(), Nice: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Eval evaluates a JavaScript expression in the page and returns its
// value, JSON-decoded into T.
func Eval[T any](b *Browser, expr string) (T, error) {
	return chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
}

// Open loads url in the tab.
func (b *Browser) Open(url string) error {
	return chromedp.Do(b.Ctx, chromedp.Navigate(url))
}

// Wait polls a JavaScript expression until it is true, at most timeout;
// the error says what the expression last gave.
func (b *Browser) Wait(expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := Eval[bool](b, "!!("+expr+")")
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("groundtest: %s not true within %s (last: %v, %v)", expr, timeout, ok, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Screenshot writes the whole page as a PNG to path.
func (b *Browser) Screenshot(path string) error {
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("groundtest: screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// Tick is the moment the page showed a drone's telemetry message: its row
// in #fleet took the message's tick.
type Tick struct {
	Drone string
	Tick  int64
	AtMs  float64 // the browser's clock, Unix milliseconds
}

// WatchTicks makes the open page record every tick its fleet rows show,
// from now on (Ticks reads them).
func (b *Browser) WatchTicks() error {
	_, err := Eval[bool](b, `(() => {
		window.__ticks = [];
		new MutationObserver((records) => {
			const at = performance.timeOrigin + performance.now();
			for (const r of records) window.__ticks.push([r.target.dataset.drone, Number(r.target.dataset.tick), at]);
		}).observe(document.querySelector('#fleet'), {subtree: true, attributes: true, attributeFilter: ['data-tick']});
		return true;
	})()`)
	return err
}

// Ticks returns what WatchTicks recorded so far.
func (b *Browser) Ticks() ([]Tick, error) {
	raw, err := Eval[[][3]any](b, `window.__ticks || []`)
	if err != nil {
		return nil, err
	}
	out := make([]Tick, 0, len(raw))
	for _, r := range raw {
		d, _ := r[0].(string)
		tick, _ := r[1].(float64)
		at, _ := r[2].(float64)
		out = append(out, Tick{Drone: d, Tick: int64(tick), AtMs: at})
	}
	return out, nil
}
