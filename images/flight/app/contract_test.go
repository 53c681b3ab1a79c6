package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/images/flight/control"
)

// TestV1FrameContract replays two consecutive state frames that a real
// flight v1 emitted (recorded by images/flight's TestRecordV1Frames with
// -update-golden) through this build. This build must accept v1's schema,
// decode every field of v1's state (no unknown fields), and, from frame k-1's
// state and frame k's sensor sample, compute the outputs v1 wrote at k within
// the shadow tolerance: otherwise it could never sync with a v1 owner.
func TestV1FrameContract(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "frames_v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		t.Fatalf("testdata holds %d frames (%v), want 2", len(pair), err)
	}
	var frames [2]*handoff.Frame
	for i, b := range pair {
		if frames[i], err = handoff.DecodeFrame(b); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	f0, f1 := frames[0], frames[1]
	if f1.Seq != f0.Seq+1 || f1.Tick != f0.Tick+1 {
		t.Fatalf("frames are not consecutive: seq %d→%d tick %d→%d", f0.Seq, f1.Seq, f0.Tick, f1.Tick)
	}
	if !slices.Contains(strings.Split(Accepts, ","), f0.Schema) {
		t.Fatalf("this build accepts %q, v1 publishes %q", Accepts, f0.Schema)
	}
	var st control.State
	dec := json.NewDecoder(bytes.NewReader(f0.State))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("v1's state does not decode into this build's State: %v", err)
	}
	if st.BaroRefPa == 0 {
		t.Fatal("v1's state carries no barometer reference")
	}
	cfg, err := Load(func(k string) string { return map[string]string{"FLIGHT_BUS": "sim:/x", "FLIGHT_PATTERN": "hover"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	out, err := model{cfg}.Replay(f0.State, f1.Sample)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if d := out[i] - f1.Out[i]; d > 0.01 || d < -0.01 {
			t.Fatalf("motor %d: this build computes %.5f, v1 wrote %.5f", i, out[i], f1.Out[i])
		}
	}
	t.Logf("replayed v1 tick %d: outputs %v match v1's %v", f1.Tick, out, f1.Out)
}
