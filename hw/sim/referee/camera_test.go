package referee

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// packets returns packets from..to-1 of frame f (count per frame).
func packets(f uint32, from, to, count int) []CameraPacket {
	var ps []CameraPacket
	for n := from; n < to; n++ {
		ps = append(ps, CameraPacket{Frame: f, Number: n, Count: count})
	}
	return ps
}

// read is one CameraRead, delivered frames logged as RecordCameraFrame
// would be by the simulator.
func read(r *Referee, t int64, reader string, conn uint64, ps ...[]CameraPacket) []uint32 {
	rd := CameraRead{T: t, Reader: reader, Conn: conn, Packets: slices.Concat(ps...)}
	got := r.RecordCameraRead(rd, nil)
	for _, f := range got {
		r.RecordCameraFrame(CameraFrame{T: t, Reader: reader, Frame: f})
	}
	return got
}

func TestCameraDelivery(t *testing.T) {
	disc := []CameraPacket{{Discard: true}, {Discard: true}}
	corrupt := packets(4, 10, 11, 63)
	corrupt[0].Corrupt = true
	type step struct {
		reader string
		conn   uint64
		ps     [][]CameraPacket
		want   []uint32
	}
	for _, tc := range []struct {
		name    string
		steps   []step
		readers map[string]CameraReader
		corrupt int
	}{
		{"whole frame in three reads with discards", []step{
			{"v1", 1, [][]CameraPacket{packets(0, 0, 24, 63)}, nil},
			{"v1", 1, [][]CameraPacket{packets(0, 24, 48, 63)}, nil},
			{"v1", 1, [][]CameraPacket{packets(0, 48, 63, 63), disc}, []uint32{0}},
		}, map[string]CameraReader{"v1": {Frames: 1, Packets: 63}}, 0},
		{"no telemetry: 60 packets", []step{
			{"v1", 1, [][]CameraPacket{packets(7, 0, 60, 60)}, []uint32{7}},
		}, map[string]CameraReader{"v1": {Frames: 1, Packets: 60}}, 0},
		{"two readers share a frame: nobody gets it", []step{
			{"v1", 1, [][]CameraPacket{packets(1, 0, 30, 63)}, nil},
			{"v2", 2, [][]CameraPacket{packets(1, 30, 63, 63)}, nil},
			{"v2", 2, [][]CameraPacket{packets(2, 0, 63, 63)}, []uint32{2}},
		}, map[string]CameraReader{"v1": {Packets: 30}, "v2": {Frames: 1, Packets: 96}}, 0},
		{"one reader, two connections, each its own order", []step{
			{"v1", 1, [][]CameraPacket{packets(1, 0, 30, 63)}, nil},
			{"v1", 3, [][]CameraPacket{packets(1, 30, 63, 63)}, nil},
		}, map[string]CameraReader{"v1": {Packets: 63}}, 0},
		{"a jump to the next frame loses the first", []step{
			{"v1", 1, [][]CameraPacket{packets(3, 0, 40, 63), packets(4, 0, 63, 63)}, []uint32{4}},
		}, map[string]CameraReader{"v1": {Frames: 1, Packets: 103}}, 0},
		{"a corrupt packet spoils its frame", []step{
			{"v1", 1, [][]CameraPacket{packets(4, 0, 10, 63), corrupt, packets(4, 11, 63, 63)}, nil},
			{"v1", 1, [][]CameraPacket{packets(5, 0, 63, 63)}, []uint32{5}},
		}, map[string]CameraReader{"v1": {Frames: 1, Packets: 126, Corrupt: 1}}, 1},
		{"a missing packet", []step{
			{"v1", 1, [][]CameraPacket{packets(6, 0, 10, 63), packets(6, 11, 63, 63)}, nil},
		}, map[string]CameraReader{"v1": {Packets: 62}}, 0},
		{"discards only are not logged", []step{
			{"v1", 1, [][]CameraPacket{disc}, nil},
		}, map[string]CameraReader{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{CameraCap: 64})
			for i, s := range tc.steps {
				got := read(r, t0+int64(i)*ms, s.reader, s.conn, s.ps...)
				if fmt.Sprint(got) != fmt.Sprint(s.want) {
					t.Fatalf("step %d delivered %v, want %v", i, got, s.want)
				}
			}
			rep := r.CameraReport(0, 0)
			if fmt.Sprint(rep.Readers) != fmt.Sprint(tc.readers) || rep.Corrupt != tc.corrupt {
				t.Fatalf("readers %v corrupt %d, want %v %d", rep.Readers, rep.Corrupt, tc.readers, tc.corrupt)
			}
		})
	}
}

func TestCameraReport(t *testing.T) {
	r := New(Config{CameraCap: 1024})
	// v1 reads frames 0..9 every 37 ms, then nothing for 300 ms, then
	// frames 18..19; v2 reads one frame in the gap.
	at := func(i int) int64 { return t0 + int64(i)*37*ms }
	for i := range 10 {
		read(r, at(i), "v1", 1, packets(uint32(i), 0, 63, 63))
	}
	read(r, at(14), "v2", 2, packets(14, 0, 63, 63))
	read(r, at(18), "v1", 1, packets(18, 0, 63, 63))
	read(r, at(19), "v1", 1, packets(19, 0, 63, 63))

	// Configuration commands: before any read in the window of interest
	// (at t0 - 1 s, no read yet), 50 ms after a read, and 1 s after the
	// last one.
	r2 := New(Config{})
	r2.RecordCameraCommand(t0-1000*ms, "v1", 0x0219)
	read(r2, t0, "v1", 1, packets(0, 0, 63, 63))
	r2.RecordCameraCommand(t0+50*ms, "v2", 0x0101)
	r2.RecordCameraCommand(t0+1000*ms, "v2", 0x021D)

	for _, tc := range []struct {
		name     string
		r        *Referee
		from, to int64
		frames   int
		readers  map[string]CameraReader
		gapMs    float64
		config   int
		cmds     int
	}{
		{"everything", r, 0, 0, 13, map[string]CameraReader{"v1": {Frames: 12, Packets: 756}, "v2": {Frames: 1, Packets: 63}}, 5 * 37, 0, 0},
		{"v1's steady frames", r, at(0), at(9), 10, map[string]CameraReader{"v1": {Frames: 10, Packets: 630}}, 37, 0, 0},
		{"v2 in v1's gap", r, at(9), at(18), 3, map[string]CameraReader{"v1": {Frames: 2, Packets: 126}, "v2": {Frames: 1, Packets: 63}}, 5 * 37, 0, 0},
		{"commands", r2, 0, 0, 1, map[string]CameraReader{"v1": {Frames: 1, Packets: 63}}, 0, 1, 3},
		{"commands after the stream", r2, t0 + 500*ms, 0, 0, map[string]CameraReader{}, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := tc.r.CameraReport(tc.from, tc.to)
			if rep.Frames != tc.frames || fmt.Sprint(rep.Readers) != fmt.Sprint(tc.readers) ||
				!near(rep.MaxFrameGapMs, tc.gapMs) || rep.ConfigWhileStreaming != tc.config || len(rep.ConfigCommands) != tc.cmds {
				t.Fatalf("report %+v\nwant frames %d readers %v gap %v ms, %d of %d commands while streaming",
					rep, tc.frames, tc.readers, tc.gapMs, tc.config, tc.cmds)
			}
		})
	}
	rep := r2.CameraReport(0, 0)
	if c := rep.ConfigCommands[1]; c.Writer != "v2" || c.Command != 0x0101 || !c.Streaming || c.T != t0+50*ms {
		t.Fatalf("command %+v", c)
	}
	if fs := r.CameraFrames(at(9), at(14)); len(fs) != 2 || fs[0].Frame != 9 || fs[1].Reader != "v2" {
		t.Fatalf("CameraFrames = %+v", fs)
	}
}

func TestCameraReportJSON(t *testing.T) {
	r := New(Config{})
	r.Observe(Sample{T: t0}) // other logs do not widen the camera's window
	b, err := json.Marshal(r.CameraReport(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"from", "to", "seconds", "readers", "frames", "max_frame_gap_ms",
		"corrupt_packets", "config_while_streaming", "config_commands", "truncated"} {
		if _, ok := got[k]; !ok {
			t.Errorf("camera report JSON %s lacks %q", b, k)
		}
	}
	if string(got["seconds"]) != "0" {
		t.Errorf("an empty camera log spans %s s, want 0", got["seconds"])
	}
	if string(got["readers"]) != "{}" || string(got["config_commands"]) != "[]" {
		t.Errorf("empty camera report JSON %s, want readers {} and config_commands []", b)
	}
}

// TestReportJSONUnchanged pins the motor report's JSON keys: the camera's
// figures live in CameraReport, and /report changes only by deliberate
// additions (the take-back counts, where the longest gap began).
func TestReportJSONUnchanged(t *testing.T) {
	r := New(Config{})
	read(r, t0, "v1", 1, packets(0, 0, 63, 63))
	b, err := json.Marshal(r.Report(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"airborne", "alt_err_max_m", "alt_err_p99_m", "att_err_max_deg", "att_err_p99_deg",
		"crashed", "crashed_at", "double_drive", "false_takebacks", "from", "max_gap_at", "max_gap_ms", "mean_gap_ms", "p99_gap_ms",
		"samples", "seconds", "stale_refused", "takebacks", "to", "truncated", "updates", "writer_switches", "writers"}
	if !slices.Equal(keys, want) {
		t.Fatalf("Report JSON keys %v, want %v", keys, want)
	}
}

func TestCameraReset(t *testing.T) {
	r := New(Config{})
	read(r, t0, "v1", 1, packets(0, 0, 30, 63))
	r.RecordCameraCommand(t0+ms, "v1", 0x0219)
	r.Reset()
	if rep := r.CameraReport(0, 0); rep.Frames != 0 || len(rep.Readers) != 0 || len(rep.ConfigCommands) != 0 {
		t.Fatalf("after Reset: %+v", rep)
	}
	// The partial frame is forgotten too: its rest delivers nothing.
	if got := read(r, t0+2*ms, "v1", 1, packets(0, 30, 63, 63)); len(got) != 0 {
		t.Fatalf("delivered %v after Reset from a partial frame", got)
	}
	r.RecordCameraCommand(t0+3*ms, "v1", 0x0219)
	if rep := r.CameraReport(0, 0); rep.ConfigWhileStreaming != 1 {
		t.Fatalf("a command right after a read is not counted as streaming: %+v", rep)
	}
}
