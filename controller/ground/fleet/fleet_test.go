package fleet

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/hw/camera/thermal"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 22, 1, 58, 20, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func js(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tel(epoch uint64, instance, version string, alt float64) report.Telemetry {
	return report.Telemetry{Drone: "d1", App: "flight", Instance: instance, Version: version, Epoch: epoch, Tick: 4221400,
		RollDeg: 0.25, PitchDeg: -0.5, AltM: alt, Motors: []float64{0.63, 0.64, 0.62, 0.65}, Time: "2026-11-22T01:58:22.5Z"}
}

func signed(t *testing.T, c command.Command) []byte {
	t.Helper()
	_, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c.Issued, c.Expires = t0, t0.Add(2*time.Minute)
	c, err = command.Sign(c, "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	return js(t, c)
}

func jpegWith(t *testing.T, comment string) []byte {
	t.Helper()
	var e thermal.Encoder
	b, err := e.Append(nil, make([]uint16, 4*3), 4, 3, comment)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// one returns the only page message of a Handle.
func one(t *testing.T, out [][]byte) []byte {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("%d page messages, want 1: %q", len(out), out)
	}
	return out[0]
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: %v: %s", file, err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s changed (the page reads it: change app.js with it, then go test -update):\n%s\nwant:\n%s", file, buf.Bytes(), want)
	}
}

// TestGolden pins the page protocol: one message of each type, and the
// snapshot of the drone that made them.
func TestGolden(t *testing.T) {
	f := New(Config{})
	golden(t, "drone.golden.json", one(t, f.Handle("fleet/d1/state", js(t, report.State{Drone: "d1", Online: true,
		Committed: map[string]string{"flight": "reg/flight@sha256:ab"}, Owner: map[string]string{"flight": "flight-aaaa"}}), ms(0))))
	one(t, f.Handle("fleet/d1/telemetry", js(t, tel(1, "flight-aaaa", "v1", 2.01)), ms(50)))
	one(t, f.Handle("fleet/d1/cmd", signed(t, command.Command{ID: "c-7", Kind: command.KindUpdate, Drone: "d1", App: "flight",
		Image: "reg/flight:v2@sha256:" + strings.Repeat("ab", 32)}), ms(100)))
	for i, e := range []report.Event{
		{Phase: report.PhasePulling}, {Phase: report.PhasePulled, Bytes: 2048}, {Phase: "prepare", From: "flight-aaaa", To: "flight-bbbb"},
		{Phase: "cutover", Epoch: 2, Tick: 4221327},
	} {
		e.Drone, e.Command, e.Time = "d1", "c-7", "2026-11-22T01:58:22Z"
		one(t, f.Handle("fleet/d1/events", js(t, e), ms(200+100*i)))
	}
	golden(t, "telemetry.golden.json", one(t, f.Handle("fleet/d1/telemetry", js(t, tel(2, "flight-bbbb", "v2", 2.02)), ms(520))))
	golden(t, "update.golden.json", one(t, f.Handle("fleet/d1/events", js(t, report.Event{Drone: "d1", Command: "c-7", Phase: report.PhaseResult,
		Outcome: "reverted", Error: "candidate heartbeat lost in probation", From: "flight-bbbb", To: "flight-aaaa", Epoch: 3}), ms(3600))))
	golden(t, "camera.golden.json", one(t, f.Handle("fleet/d1/camera", jpegWith(t, `{"count":7,"instance":"flight-bbbb"}`), ms(3700))))
	golden(t, "warning.golden.json", one(t, f.Handle("fleet/d1/telemetry", []byte(`{"alt_m":`), ms(3800))))
	golden(t, "snapshot.golden.json", f.Snapshot(ms(4000)))
}

// TestMalformed feeds bad messages between good ones: each is counted as
// a warning for its drone and topic, and changes nothing else.
func TestMalformed(t *testing.T) {
	tests := []struct {
		name, topic string
		payload     []byte
		drone, kind string // the warning's
		msg         string // in its error
	}{
		{"telemetry not JSON", "fleet/d1/telemetry", []byte("alt=2"), "d1", "telemetry", "not JSON"},
		{"telemetry an array", "fleet/d1/telemetry", []byte(`[1,2]`), "d1", "telemetry", "cannot unmarshal array"},
		{"telemetry of a number as a string", "fleet/d1/telemetry", []byte(`{"alt_m":"high"}`), "d1", "telemetry", "alt_m"},
		{"telemetry of another drone", "fleet/d1/telemetry", js(t, report.Telemetry{Drone: "d2"}), "d1", "telemetry", `says drone "d2"`},
		{"too many motors", "fleet/d1/telemetry", js(t, report.Telemetry{Motors: make([]float64, 17)}), "d1", "telemetry", "17 motor outputs"},
		{"too large", "fleet/d1/telemetry", bytes.Repeat([]byte(" "), MaxPayload+1), "d1", "telemetry", "larger than"},
		{"event without phase", "fleet/d1/events", []byte(`{"drone":"d1","command":"c1"}`), "d1", "events", "no phase"},
		{"event truncated", "fleet/d1/events", []byte(`{"phase":"pull`), "d1", "events", "not JSON"},
		{"state not JSON", "fleet/d1/state", []byte(`online`), "d1", "state", "not JSON"},
		{"camera not a JPEG", "fleet/d1/camera", []byte("GIF89a..."), "d1", "camera", "not a JPEG"},
		{"command unreadable", "fleet/d1/cmd", []byte(`{"id":1}`), "d1", "cmd", "command"},
		{"command for another drone", "fleet/d1/cmd", signed(t, command.Command{ID: "c1", Kind: command.KindRollback, Drone: "d2", App: "flight"}),
			"d1", "cmd", `for drone "d2"`},
		{"drone id with a dot", "fleet/d.1/telemetry", js(t, tel(1, "a", "v1", 1)), "", "topic", "not fleet/<drone>/<kind>"},
		{"deeper topic", "fleet/d1/telemetry/x", js(t, tel(1, "a", "v1", 1)), "", "topic", "not fleet/<drone>/<kind>"},
		{"not the fleet", "garden/d1/telemetry", js(t, tel(1, "a", "v1", 1)), "", "topic", "not fleet/<drone>/<kind>"},
	}
	f := New(Config{})
	one(t, f.Handle("fleet/d1/state", js(t, report.State{Drone: "d1", Online: true}), ms(0)))
	one(t, f.Handle("fleet/d1/telemetry", js(t, tel(1, "flight-aaaa", "v1", 2)), ms(10)))
	before := f.Snapshot(ms(20))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w Warning
			if err := json.Unmarshal(one(t, f.Handle(tc.topic, tc.payload, ms(100))), &w); err != nil {
				t.Fatal(err)
			}
			if w.Type != TypeWarning || w.Drone != tc.drone || w.Topic != tc.kind || !strings.Contains(w.Error, tc.msg) {
				t.Errorf("warning %+v, want drone %q topic %q saying %q", w, tc.drone, tc.kind, tc.msg)
			}
			if got := f.Stats().Malformed; got != uint64(i+1) {
				t.Errorf("malformed count %d, want %d", got, i+1)
			}
		})
	}
	var a, b Snapshot
	json.Unmarshal(before, &a)
	json.Unmarshal(f.Snapshot(ms(20)), &b)
	if a.Drones[0].Last == nil || b.Drones[0].Last == nil || a.Drones[0].Last.Telemetry.AltM != b.Drones[0].Last.Telemetry.AltM ||
		len(b.Drones[0].History.At) != 1 || len(b.Drones[0].Updates) != 0 || b.Drones[0].Camera != nil || len(b.Drones) != 1 {
		t.Errorf("bad messages changed the picture:\n%s\nthen:\n%s", before, f.Snapshot(ms(20)))
	}
	if b.Drones[0].Warnings != 12 || len(b.Warnings) != 1 || b.Warnings[0].Count != 3 {
		t.Errorf("warnings: drone %d, topics %+v", b.Drones[0].Warnings, b.Warnings)
	}
	// And good messages still go through.
	one(t, f.Handle("fleet/d1/telemetry", js(t, tel(1, "flight-aaaa", "v1", 2.5)), ms(200)))
}

func TestOtherTopics(t *testing.T) {
	f := New(Config{})
	if out := f.Handle("fleet/d1/logs", []byte("anything"), ms(0)); out != nil {
		t.Errorf("a topic of a later agent: %q, want nothing", out)
	}
	if st := f.Stats(); st.Drones != 0 || st.Malformed != 0 || len(st.Messages) != 0 {
		t.Errorf("stats %+v after a topic the fleet does not read", st)
	}
	if got := fmt.Sprint(Filters()); got != "[fleet/+/camera fleet/+/cmd fleet/+/events fleet/+/state fleet/+/telemetry]" {
		t.Errorf("Filters %s", got)
	}
}

func TestMaxDrones(t *testing.T) {
	f := New(Config{MaxDrones: 2})
	for i, want := range []string{TypeTelemetry, TypeTelemetry, TypeWarning} {
		topic := fmt.Sprintf("fleet/d%d/telemetry", i)
		var m struct{ Type string }
		json.Unmarshal(one(t, f.Handle(topic, []byte(`{}`), ms(i))), &m)
		if m.Type != want {
			t.Errorf("%s: %s, want %s", topic, m.Type, want)
		}
	}
}

// TestTimeline follows updates phase by phase: times after the command,
// outcomes and reasons as push reports them, and only the newest kept.
func TestTimeline(t *testing.T) {
	f := New(Config{Updates: 2})
	cmd := func(t *testing.T, id string, at int) {
		one(t, f.Handle("fleet/d1/cmd", signed(t, command.Command{ID: id, Kind: command.KindUpdate, Drone: "d1", App: "flight",
			Image: "reg/flight@sha256:" + strings.Repeat("cd", 32)}), ms(at)))
	}
	event := func(t *testing.T, e report.Event, at int) Update {
		t.Helper()
		e.Drone = "d1"
		var u Update
		if err := json.Unmarshal(one(t, f.Handle("fleet/d1/events", js(t, e), ms(at))), &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name            string
		final           report.Event
		outcome, reason string
	}{
		{"committed", report.Event{Phase: report.PhaseResult, Outcome: "committed"}, "committed", ""},
		{"deployed", report.Event{Phase: report.PhaseDeployed, Outcome: "committed"}, "deployed", ""},
		{"reverted", report.Event{Phase: report.PhaseResult, Outcome: "reverted", Error: "no heartbeat"}, "reverted", "no heartbeat"},
		{"aborted without a reason", report.Event{Phase: report.PhaseResult, Outcome: "aborted"}, "aborted", "stopped before cut-over"},
		{"refused", report.Event{Phase: report.PhaseRefused, Error: "expired"}, "refused", "expired"},
		{"recovered", report.Event{Phase: report.PhaseRecovered, Outcome: "committed on recovery"}, "committed", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("c%d", i)
			at := 10000 * i
			cmd(t, id, at)
			u := event(t, report.Event{Command: id, Phase: report.PhasePulling}, at+250)
			if u.Done || len(u.Phases) != 1 || u.Phases[0].AtMs != 250 || u.Kind != "update" {
				t.Errorf("after pulling: %+v", u)
			}
			tc.final.Command = id
			u = event(t, tc.final, at+5500)
			if !u.Done || u.Outcome != tc.outcome || !strings.Contains(u.Reason, tc.reason) || u.Phases[1].AtMs != 5500 {
				t.Errorf("final: %+v, want outcome %q reason %q", u, tc.outcome, tc.reason)
			}
		})
	}
	// A copy of a command refused as a replay after its outcome changes
	// nothing but the list of phases.
	u := event(t, report.Event{Command: "c5", Phase: report.PhaseRefused, Error: "command: replayed: c5"}, 59000)
	if u.Outcome != "committed" || len(u.Phases) != 3 {
		t.Errorf("after a late refusal: %+v", u)
	}
	// An event before (or without) its command counts from itself; one
	// without a command id is an entry of its own.
	if u := event(t, report.Event{Command: "unseen", Phase: "shadow"}, 90000); u.Phases[0].AtMs != 0 || u.Kind != "" {
		t.Errorf("event of an unseen command: %+v", u)
	}
	if u := event(t, report.Event{Phase: report.PhaseRefused, Error: "malformed"}, 91000); !strings.HasPrefix(u.Command, "unreadable@") || !u.Done {
		t.Errorf("refusal without a command: %+v", u)
	}
	var s Snapshot
	json.Unmarshal(f.Snapshot(ms(92000)), &s)
	if u := s.Drones[0].Updates; len(u) != 2 || !strings.HasPrefix(u[0].Command, "unreadable@") || u[1].Command != "unseen" {
		t.Errorf("kept updates %+v, want the two newest, newest first", u)
	}
}

func TestHistoryAndMarkers(t *testing.T) {
	f := New(Config{History: time.Second})
	for i := range 40 { // 2 s at 20 Hz; the epoch changes at 1 s and back at 1.5 s
		epoch, inst := uint64(1), "flight-aaaa"
		if i >= 20 && i < 30 {
			epoch, inst = 2, "flight-bbbb"
		}
		if i >= 30 {
			epoch, inst = 3, "flight-aaaa"
		}
		f.Handle("fleet/d1/telemetry", js(t, tel(epoch, inst, "v1", float64(i))), ms(50*i))
	}
	var s Snapshot
	json.Unmarshal(f.Snapshot(ms(2000)), &s)
	h := s.Drones[0].History
	if n := len(h.At); n != 21 || h.Alt[0] != 19 || h.Alt[n-1] != 39 || len(h.Motors[3]) != n {
		t.Errorf("history of %d samples from alt %v to %v, want the last second: 21 from 19 to 39", n, h.Alt[0], h.Alt[n-1])
	}
	m := s.Drones[0].Markers
	if len(m) != 2 || m[0].Epoch != 2 || m[0].From != "flight-aaaa" || m[0].To != "flight-bbbb" || m[0].At != Millis(1000+t0.UnixMilli()) ||
		m[1].Epoch != 3 || m[1].To != "flight-aaaa" {
		t.Errorf("markers %+v", m)
	}
}

// TestTelemetryWithout: a message without motors (or with null) is a
// message with none, not one the page cannot read.
func TestTelemetryWithout(t *testing.T) {
	f := New(Config{})
	for _, p := range []string{`{"alt_m":1}`, `{"alt_m":1,"motors":null}`} {
		var m Telemetry
		if err := json.Unmarshal(one(t, f.Handle("fleet/d1/telemetry", []byte(p), ms(0))), &m); err != nil {
			t.Fatal(err)
		}
		if m.Telemetry.Motors == nil || len(m.Telemetry.Motors) != 0 {
			t.Errorf("%s: motors %v, want []", p, m.Telemetry.Motors)
		}
	}
}

func TestCameraRate(t *testing.T) {
	f := New(Config{})
	for i := range 30 { // 9 frames a second
		f.Handle("fleet/d1/camera", jpegWith(t, "plain text, not JSON"), ms(111*i))
	}
	var c Camera
	json.Unmarshal(one(t, f.Handle("fleet/d1/camera", jpegWith(t, "x"), ms(111*30))), &c)
	if c.Seq != 31 || c.FPS < 8.5 || c.FPS > 9.5 || c.Comment != "x" || c.Meta != nil {
		t.Errorf("camera %+v", c)
	}
	jpeg, seq, ok := f.Frame("d1")
	if !ok || seq != 31 || !bytes.Equal(jpeg, jpegWith(t, "x")) {
		t.Errorf("Frame: %d bytes, seq %d, %v", len(jpeg), seq, ok)
	}
	if _, _, ok := f.Frame("d2"); ok {
		t.Error("a frame of a drone never seen")
	}
}
