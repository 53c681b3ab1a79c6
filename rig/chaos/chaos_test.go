package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/containers"
)

// fakeContainers is a namespace of containers that records signals.
type fakeContainers struct {
	mu      sync.Mutex
	list    []containers.Status
	signals []string         // "id SIGNAME", in order
	fail    map[string]error // Signal fails with it for that "id SIGNAME"
	sent    chan string      // each signal, when not nil
}

func (f *fakeContainers) List(context.Context) ([]containers.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]containers.Status(nil), f.list...), nil
}

func (f *fakeContainers) Signal(_ context.Context, id string, sig syscall.Signal) error {
	s := id + " " + sigName(sig)
	if err := f.fail[s]; err != nil {
		return err
	}
	f.mu.Lock()
	f.signals = append(f.signals, s)
	f.mu.Unlock()
	if f.sent != nil {
		f.sent <- s
	}
	return nil
}

func (f *fakeContainers) sentSignals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.signals...)
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGSTOP: "SIGSTOP", syscall.SIGCONT: "SIGCONT", syscall.SIGKILL: "SIGKILL"}[s]
}

// fakeClock advances at once by what is slept, except that a sleep of
// block or more waits for the context (a fault that lasts until stopped).
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	block time.Duration // 0 = never block
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if c.block > 0 && d >= c.block {
		<-ctx.Done()
		return ctx.Err()
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

// flight is the containers of a hand-over: v1 owns, v2 is the candidate,
// and an app of another name runs beside them.
func flight() []containers.Status {
	return []containers.Status{
		{ID: "flight-v1", Running: true, Pid: 101, Labels: map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v1", InstanceLabel: "flight-v1"}},
		{ID: "flight-v2", Running: true, Pid: 102, Labels: map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v2", InstanceLabel: "flight-v2"}},
		{ID: "camera-v2", Running: true, Pid: 103, Labels: map[string]string{"io.skyswap.app": "camera", "io.skyswap.version": "v2"}},
	}
}

var v2 = Selector{"io.skyswap.app": "flight", "io.skyswap.version": "v2"}

// runFaults runs faults at sel over c with clk until they are spent and
// returns the events.
func runFaults(t *testing.T, c Containers, clk Clock, sel Selector, cfg Config, faults ...string) []Event {
	t.Helper()
	var fs []Fault
	for _, s := range faults {
		f, err := ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	var out bytes.Buffer
	cfg.Clock = clk
	if err := New(c, &out, cfg).Run(context.Background(), sel, fs); err != nil {
		t.Fatal(err)
	}
	return decode(t, out.Bytes())
}

func decode(t *testing.T, b []byte) []Event {
	t.Helper()
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestSchedule: firings start after `after`, then every `every` from the
// first one's start, `count` times (once without every).
func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		fault string
		at    []time.Duration // the firings' times after the start
	}{
		{"kind=sigstop,for=300ms", []time.Duration{0}},
		{"kind=sigstop,for=300ms,after=5s", []time.Duration{5 * time.Second}},
		{"kind=sigstop,for=300ms,every=10s,count=3", []time.Duration{0, 10 * time.Second, 20 * time.Second}},
		{"kind=sigstop,for=300ms,after=1s,every=2s,count=2", []time.Duration{time.Second, 3 * time.Second}},
		{"kind=sigkill,every=1s,count=4", []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			c := &fakeContainers{list: flight()}
			evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{}, tc.fault)
			if len(evs) != len(tc.at) {
				t.Fatalf("%d events, want %d: %+v", len(evs), len(tc.at), evs)
			}
			for i, ev := range evs {
				at, err := time.Parse(time.RFC3339Nano, ev.T)
				if err != nil {
					t.Fatal(err)
				}
				if at.Sub(epoch) != tc.at[i] || ev.N != i+1 || ev.Spec != tc.fault {
					t.Errorf("event %d: at %v, n %d, spec %q; want at %v, n %d, spec %q", i, at.Sub(epoch), ev.N, ev.Spec, tc.at[i], i+1, tc.fault)
				}
			}
		})
	}
}

// TestSelectsByLabel: each fault touches v2 only, names it with its
// labels and pid, and undoes what it did.
func TestSelectsByLabel(t *testing.T) {
	for _, tc := range []struct {
		fault   string
		signals []string
	}{
		{"kind=sigstop,for=300ms", []string{"flight-v2 SIGSTOP", "flight-v2 SIGCONT"}},
		{"kind=sigkill", []string{"flight-v2 SIGKILL"}},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			c := &fakeContainers{list: flight()}
			evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{}, tc.fault)
			if got := c.sentSignals(); strings.Join(got, ";") != strings.Join(tc.signals, ";") {
				t.Errorf("signals %q, want %q", got, tc.signals)
			}
			if len(evs) != 1 {
				t.Fatalf("events %+v, want one", evs)
			}
			ev := evs[0]
			if !ev.OK || ev.Container != "flight-v2" || ev.Pid != 102 || ev.Labels["io.skyswap.version"] != "v2" || ev.Error != "" || ev.MonoNs == 0 {
				t.Errorf("event %+v, want v2 touched", ev)
			}
		})
	}
}

// TestNothingMatches: a selector that matches nothing is reported at each
// firing and the schedule goes on.
func TestNothingMatches(t *testing.T) {
	c := &fakeContainers{list: flight()}
	sel := Selector{"io.skyswap.version": "v3"}
	evs := runFaults(t, c, &fakeClock{now: epoch}, sel, Config{Namespace: "skyswap-x"}, "kind=sigstop,for=1s,every=5s,count=3")
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for _, ev := range evs {
		if ev.OK || ev.Container != "" || !strings.Contains(ev.Error, "no container matches io.skyswap.version=v3 in namespace skyswap-x") {
			t.Errorf("event %+v, want ok=false saying nothing matches", ev)
		}
	}
	if s := c.sentSignals(); len(s) != 0 {
		t.Errorf("signals %q sent, want none", s)
	}
}

func TestNotRunning(t *testing.T) {
	list := flight()
	list[1].Running, list[1].Pid, list[1].Exited, list[1].ExitCode = false, 0, true, 137
	c := &fakeContainers{list: list}
	evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{}, "kind=sigkill")
	if len(evs) != 1 || evs[0].OK || evs[0].Container != "flight-v2" || !strings.Contains(evs[0].Error, "exited with code 137") {
		t.Fatalf("events %+v, want v2 reported as exited", evs)
	}
	if s := c.sentSignals(); len(s) != 0 {
		t.Errorf("signals %q sent, want none", s)
	}
}

// TestUndoOnStop: a fault still on when Run is stopped is undone.
func TestUndoOnStop(t *testing.T) {
	c := &fakeContainers{list: flight(), sent: make(chan string, 4)}
	f, _ := ParseFault("kind=sigstop,for=1h")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- New(c, &out, Config{Clock: &fakeClock{now: epoch, block: time.Hour}}).Run(ctx, v2, []Fault{f})
	}()
	if s := <-c.sent; s != "flight-v2 SIGSTOP" {
		t.Fatalf("first signal %q", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.sentSignals(); len(got) != 2 || got[1] != "flight-v2 SIGCONT" {
		t.Fatalf("signals %q, want SIGSTOP then SIGCONT", got)
	}
}

// TestUndoFailure: an undo that fails gets its own line.
func TestUndoFailure(t *testing.T) {
	c := &fakeContainers{list: flight(), fail: map[string]error{"flight-v2 SIGCONT": errors.New("containerd went away")}}
	evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{}, "kind=sigstop,for=1s")
	if len(evs) != 2 || !evs[0].OK || evs[1].OK || !evs[1].Undo || !strings.Contains(evs[1].Error, "containerd went away") {
		t.Fatalf("events %+v, want the injection, then a failed undo", evs)
	}
}

// TestUndoNamesItsContainer: with two containers selected, one that
// could not be stopped and one that could not be continued, each line
// names the container it is about.
func TestUndoNamesItsContainer(t *testing.T) {
	c := &fakeContainers{list: flight(), fail: map[string]error{
		"flight-v2 SIGSTOP": errors.New("no stop"), "camera-v2 SIGCONT": errors.New("no cont")}}
	evs := runFaults(t, c, &fakeClock{now: epoch}, Selector{"io.skyswap.version": "v2"}, Config{}, "kind=sigstop,for=1s")
	var got []string
	for _, ev := range evs {
		got = append(got, fmt.Sprintf("%s ok=%v undo=%v %s", ev.Container, ev.OK, ev.Undo, ev.Error))
	}
	want := []string{"flight-v2 ok=false undo=false no stop", "camera-v2 ok=true undo=false ", "camera-v2 ok=false undo=true no cont"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestUndoAfterExit: a task that died while stopped is not an undo failure.
func TestUndoAfterExit(t *testing.T) {
	c := &fakeContainers{list: flight(), fail: map[string]error{"flight-v2 SIGCONT": fmt.Errorf("%w: gone", containers.ErrNotFound)}}
	evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{}, "kind=sigstop,for=1s")
	if len(evs) != 1 || !evs[0].OK {
		t.Fatalf("events %+v, want only the injection", evs)
	}
}

func TestLatencyNeedsRelay(t *testing.T) {
	c := &fakeContainers{list: flight()}
	evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{}, "kind=latency,delay=600ms,for=2s")
	if len(evs) != 1 || evs[0].OK || !strings.Contains(evs[0].Error, "-nats-listen") || evs[0].DelayMs != 600 {
		t.Fatalf("events %+v, want ok=false saying to start the relay", evs)
	}
}

// TestI2CAsksTheSimulator: an i2c fault starts a burst on the instance's
// bus client and ends it; a simulator that does not answer is reported.
func TestI2CAsksTheSimulator(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	sim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	defer sim.Close()
	c := &fakeContainers{list: flight()}
	evs := runFaults(t, c, &fakeClock{now: epoch}, v2, Config{Sim: sim.URL}, "kind=i2c,for=200ms,rate=0.2,addr=0x68")
	want := []string{
		"POST /faults/i2c?addr=0x68&client=flight-v2&for=200ms&rate=0.2",
		"DELETE /faults/i2c?client=flight-v2",
	}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if len(evs) != 1 || !evs[0].OK || evs[0].Rate != 0.2 || evs[0].Addr != "0x68" || evs[0].Container != "flight-v2" {
		t.Fatalf("events %+v", evs)
	}

	sim.Close()
	evs = runFaults(t, c, &fakeClock{now: epoch}, v2, Config{Sim: sim.URL}, "kind=i2c,for=200ms")
	if len(evs) != 1 || evs[0].OK || !strings.Contains(evs[0].Error, "-sim") {
		t.Fatalf("events %+v, want ok=false saying to give -sim", evs)
	}
}
