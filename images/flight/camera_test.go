package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/hw/camera/thermal"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/referee"
)

// frameMeta is what a camera JPEG's COM segment carries (app.frameMeta).
type frameMeta struct {
	Instance  string `json:"instance"`
	Count     uint32 `json:"count"`
	T         int64  `json:"t"`
	CRCErrors uint64 `json:"crc_errors"`
	SeqErrors uint64 `json:"seq_errors"`
	Resyncs   uint64 `json:"resyncs"`
}

// cameraWatch collects the camera frames published on the on-board NATS.
type cameraWatch struct {
	mu     sync.Mutex
	frames []frameMeta
}

func watchCamera(t *testing.T, f *fleet) *cameraWatch {
	t.Helper()
	nc, err := nats.Connect(f.NATS.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := &cameraWatch{}
	_, err = nc.Subscribe(handoff.SubjectsFor("flight").Camera(), func(m *nats.Msg) {
		c, err := thermal.Comment(m.Data)
		var meta frameMeta
		if err == nil && json.Unmarshal(c, &meta) == nil {
			w.mu.Lock()
			w.frames = append(w.frames, meta)
			w.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// since returns the frames read at or after t (CLOCK_MONOTONIC ns).
func (w *cameraWatch) since(t int64) []frameMeta {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []frameMeta
	for _, f := range w.frames {
		if f.T >= t {
			out = append(out, f)
		}
	}
	return out
}

// waitFrames waits until n frames from instance were read after t.
func (w *cameraWatch) waitFrames(t *testing.T, instance string, after int64, n int) []frameMeta {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got []frameMeta
		for _, f := range w.since(after) {
			if f.Instance == instance {
				got = append(got, f)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d camera frames from %s within 20 s", len(got), n, instance)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fleet) camera(from, to int64) referee.CameraReport {
	f.t.Helper()
	r, err := f.Sim.Camera(context.Background(), from, to)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// TestCameraHandover: v1 (no camera) hands over to v2, which configures
// the camera once it owns the drone; then v2 hands over to a new v2
// instance three times. Frames keep flowing on the on-board NATS from
// whoever owns the drone and from nobody else, each new owner attaches
// without reconfiguring the streaming camera, and the longest gap in
// delivered frames across a hand-over is bounded.
func TestCameraHandover(t *testing.T) {
	f := newFleet(t, "SIM_GUST_N=0.3", "SIM_NOISE=1")
	w := watchCamera(t, f)
	time.Sleep(time.Second)
	if n := len(w.since(0)); n != 0 {
		t.Fatalf("%d camera frames while v1, which has no camera, flies", n)
	}
	res, err := f.update(coordinator.Plan{Candidate: "v2-0"}, v2Bin)
	if err != nil {
		t.Fatalf("v1 -> v2: %v (%+v)", err, res)
	}
	w.waitFrames(t, "v2-0", res.CutoverNs, 10)
	owner := "v2-0"
	steadyFrom := mono.Now()
	time.Sleep(2 * time.Second)
	steady := f.camera(steadyFrom, mono.Now())
	t.Logf("steady: %d frames in %.1f s (%.1f/s), longest gap %.0f ms", steady.Frames, steady.Seconds,
		float64(steady.Frames)/steady.Seconds, steady.MaxFrameGapMs)

	const n = 3
	for i := 1; i <= n; i++ {
		cand := fmt.Sprintf("v2-%d", i)
		res, err := f.update(coordinator.Plan{Candidate: cand}, v2Bin)
		if err != nil {
			t.Fatalf("hand-over %d: %v (%+v)", i, err, res)
		}
		got := w.waitFrames(t, cand, res.CutoverNs, 5)
		time.Sleep(500 * time.Millisecond)
		cut := res.CutoverNs
		rep := f.camera(cut-int64(time.Second), cut+int64(time.Second))
		t.Logf("hand-over %d %s -> %s: frames %d (%s %d, %s %d), longest gap %.0f ms, config while streaming %d, first frame of %s %.0f ms after the cut-over",
			i, owner, cand, rep.Frames, owner, rep.Readers[owner].Frames, cand, rep.Readers[cand].Frames,
			rep.MaxFrameGapMs, rep.ConfigWhileStreaming, cand, float64(got[0].T-cut)/1e6)
		if rep.ConfigWhileStreaming != 0 {
			t.Fatalf("hand-over %d: %d configuration commands while the camera streamed: %+v", i, rep.ConfigWhileStreaming, rep.ConfigCommands)
		}
		if rep.Readers[owner].Frames == 0 || rep.Readers[cand].Frames == 0 {
			t.Fatalf("hand-over %d: frames to the old owner %d, to the new %d", i, rep.Readers[owner].Frames, rep.Readers[cand].Frames)
		}
		// Only the owner reads: no frame of the old owner after the
		// cut-over (one in flight may finish within a frame's read time).
		for _, fm := range w.since(cut + int64(50*time.Millisecond)) {
			if fm.Instance == owner {
				t.Fatalf("hand-over %d: %s still read frame %d %.0f ms after the cut-over", i, owner, fm.Count, float64(fm.T-cut)/1e6)
			}
		}
		// The new owner took over the stream at a frame start: no packet
		// was lost between the two readers, so no error and no resync.
		if first := got[0]; first.SeqErrors != 0 || first.CRCErrors != 0 || first.Resyncs != 0 {
			t.Fatalf("hand-over %d: the new owner's first frame came after seq errors %d, crc errors %d, resyncs %d",
				i, first.SeqErrors, first.CRCErrors, first.Resyncs)
		}
		// A resync costs about 200 ms and a new image comes every 111 ms;
		// a second is far beyond either, and below a stalled stream.
		if rep.MaxFrameGapMs > 1000 {
			t.Fatalf("hand-over %d: %.0f ms without a frame", i, rep.MaxFrameGapMs)
		}
		owner = cand
	}
}

// TestCameraCorruptPackets: packets with a bad CRC and with a wrong packet
// number reach the owner; it drops and counts each, resynchronises, and
// the stream goes on, with the flight untouched.
func TestCameraCorruptPackets(t *testing.T) {
	f := newFleet(t, "SIM_GUST_N=0.3", "SIM_NOISE=1")
	w := watchCamera(t, f)
	res, err := f.update(coordinator.Plan{Candidate: "v2-0"}, v2Bin)
	if err != nil {
		t.Fatalf("v1 -> v2: %v (%+v)", err, res)
	}
	w.waitFrames(t, "v2-0", res.CutoverNs, 10)
	from := mono.Now()
	ctx := context.Background()
	for _, kind := range []string{"crc", "seq"} {
		if err := f.Sim.CorruptCamera(ctx, kind, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	after := mono.Now()
	got := w.waitFrames(t, "v2-0", after, 5) // the stream goes on
	last := got[len(got)-1]
	rep := f.camera(from, mono.Now())
	t.Logf("after a bad CRC and a bad packet number: reader counts crc %d, seq %d, resyncs %d; referee: %d corrupt packets read, %d frames, longest gap %.0f ms",
		last.CRCErrors, last.SeqErrors, last.Resyncs, rep.Corrupt, rep.Frames, rep.MaxFrameGapMs)
	if last.CRCErrors < 1 || last.SeqErrors < 1 || rep.Corrupt != 2 {
		t.Fatalf("the corrupt packets were not dropped and counted: reader crc %d seq %d, referee corrupt %d", last.CRCErrors, last.SeqErrors, rep.Corrupt)
	}
	if rep.Readers["v2-0"].Frames == 0 || rep.MaxFrameGapMs > 1000 {
		t.Fatalf("the stream did not resynchronise: %+v", rep)
	}
	// The flight is untouched: one writer, no double drive, no crash, and
	// motor gaps like any other second.
	f.flyingUnder(from, mono.Now(), "v2-0", gapBound)
}
