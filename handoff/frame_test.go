package handoff_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/handofftest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goodFrame is a valid frame at epoch 3, tick 1000, as a map so that a test
// case can delete or change any field.
func goodFrame(t *testing.T, withHandover bool) map[string]any {
	t.Helper()
	var h *handoff.Handover
	if withHandover {
		h = &handoff.Handover{Tick: 1010, To: "b", Epoch: 4, Fallback: 5}
	}
	f := handofftest.Frame("a", 3, 7, 1000, testPeriod, 42, h)
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, f), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecodeFrame proves that DecodeFrame accepts well-formed frames and
// rejects, as ErrMalformed, every frame a participant must not act on: bad
// JSON, a missing identity, zero counters, missing payloads and hand-overs
// whose epochs do not grow or that name no successor.
func TestDecodeFrame(t *testing.T) {
	edit := func(withHandover bool, change func(m map[string]any)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			m := goodFrame(t, withHandover)
			change(m)
			return mustJSON(t, m)
		}
	}
	handover := func(key string, v any) func(m map[string]any) {
		return func(m map[string]any) { m["handover"].(map[string]any)[key] = v }
	}
	raw := func(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	for _, tc := range []struct {
		name  string
		frame func(t *testing.T) []byte
		ok    bool
	}{
		{"good", edit(false, func(map[string]any) {}), true},
		{"good with handover", edit(true, func(map[string]any) {}), true},
		{"good with unknown field", edit(false, func(m map[string]any) { m["future"] = 1 }), true},
		{"empty input", raw(""), false},
		{"not json", raw("garbage \x00\xff"), false},
		{"truncated", func(t *testing.T) []byte { b := mustJSON(t, goodFrame(t, false)); return b[:len(b)/2] }, false},
		{"json array", raw("[1,2,3]"), false},
		{"json null", raw("null"), false},
		{"empty object", raw("{}"), false},
		{"epoch of the wrong type", edit(false, func(m map[string]any) { m["epoch"] = "three" }), false},
		{"negative seq", edit(false, func(m map[string]any) { m["seq"] = -1 }), false},
		{"missing schema", edit(false, func(m map[string]any) { delete(m, "schema") }), false},
		{"empty schema", edit(false, func(m map[string]any) { m["schema"] = "" }), false},
		{"missing instance", edit(false, func(m map[string]any) { delete(m, "instance") }), false},
		{"zero epoch", edit(false, func(m map[string]any) { m["epoch"] = 0 }), false},
		{"zero seq", edit(false, func(m map[string]any) { m["seq"] = 0 }), false},
		{"zero tick", edit(false, func(m map[string]any) { m["tick"] = 0 }), false},
		{"negative tick", edit(false, func(m map[string]any) { m["tick"] = -5 }), false},
		{"missing state", edit(false, func(m map[string]any) { delete(m, "state") }), false},
		{"missing sample", edit(false, func(m map[string]any) { delete(m, "sample") }), false},
		{"missing out", edit(false, func(m map[string]any) { delete(m, "out") }), false},
		{"empty out", edit(false, func(m map[string]any) { m["out"] = []float64{} }), false},
		{"null out", edit(false, func(m map[string]any) { m["out"] = nil }), false},
		{"handover epoch equal to the frame's", edit(true, handover("epoch", 3)), false},
		{"handover epoch below the frame's", edit(true, handover("epoch", 2)), false},
		{"handover fallback equal to its epoch", edit(true, handover("fallback", 4)), false},
		{"handover fallback below its epoch", edit(true, handover("fallback", 1)), false},
		{"handover without a successor", edit(true, handover("to", "")), false},
		{"handover missing to", edit(true, func(m map[string]any) { delete(m["handover"].(map[string]any), "to") }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.frame(t)
			f, err := handoff.DecodeFrame(data)
			if tc.ok {
				if err != nil || f == nil {
					t.Fatalf("DecodeFrame(%s) = %v, %v; want a frame", data, f, err)
				}
				return
			}
			if !errors.Is(err, handoff.ErrMalformed) {
				t.Fatalf("DecodeFrame(%s) error = %v; want ErrMalformed", data, err)
			}
			if f != nil {
				t.Fatalf("DecodeFrame(%s) returned a frame with error %v", data, err)
			}
		})
	}
}

// TestDecodeFrameNullPayload proves that a frame whose state or sample is
// JSON null is rejected like a missing one: a candidate must not hydrate
// from "null" (json.Unmarshal of null into the app's state is a silent
// no-op).
//
// Known bug: DecodeFrame checks len(State) == 0, but json.RawMessage keeps
// the 4 bytes "null", so such a frame is accepted. Remove the Skip once
// DecodeFrame treats null as empty.
func TestDecodeFrameNullPayload(t *testing.T) {
	for _, key := range []string{"state", "sample"} {
		m := goodFrame(t, false)
		m[key] = nil
		data := mustJSON(t, m)
		if _, err := handoff.DecodeFrame(data); !errors.Is(err, handoff.ErrMalformed) {
			t.Errorf("DecodeFrame(%s) error = %v; want ErrMalformed", data, err)
		}
	}
}

// goldenFrame is the canonical frame of testdata/frame.golden.json: every
// field set, with a hand-over.
func goldenFrame() handoff.Frame {
	return handoff.Frame{
		Schema: "flight.state/1", Instance: "v1-0", Version: "v1.2.3",
		Epoch: 7, Seq: 1234, Tick: 680000123, TickNs: 680000123 * 2500000,
		Handover: &handoff.Handover{Tick: 680000143, To: "v2-1", Epoch: 8, Fallback: 9},
		State:    json.RawMessage(`{"x":12.5,"mode":"hover"}`),
		Sample:   json.RawMessage(`{"u":-0.25}`),
		Out:      []float64{0.5, 0.51, 0.49, 0.5},
		Health:   handoff.Health{RollDeg: 1.5, PitchDeg: -2.25, AltM: 1.75},
	}
}

// TestFrameGolden proves that the frame wire format does not drift: the JSON
// encoding of a fixed frame equals testdata/frame.golden.json byte for byte,
// and the golden bytes decode back to the same frame. Run with -update to
// rewrite the golden file after a deliberate change.
func TestFrameGolden(t *testing.T) {
	path := filepath.Join("testdata", "frame.golden.json")
	f := goldenFrame()
	got, err := json.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestFrameGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("frame wire format changed:\n got %s\nwant %s\n(if deliberate, rerun with -update)", got, want)
	}
	back, err := handoff.DecodeFrame(want)
	if err != nil {
		t.Fatalf("golden frame does not decode: %v", err)
	}
	if !reflect.DeepEqual(*back, f) {
		t.Fatalf("golden frame decodes to %+v, want %+v", *back, f)
	}
}

// testPeriod is the tick period of the frames these tests make.
const testPeriod = 2500 * time.Microsecond

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
