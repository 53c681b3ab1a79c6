package referee

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
)

const (
	ms   = int64(1e6)
	us   = int64(1e3)
	tick = 2500 * us // 400 Hz
	t0   = 1000 * ms // an arbitrary monotonic start
)

func upd(t int64, writer string) Write {
	return Write{T: t, Writer: writer, Epoch: 1, Pulses: [4]uint16{1500, 1500, 1500, 1500}, Update: true}
}

// series returns n motor updates by writer, one per tick from start.
func series(start int64, n int, writer string) []Write {
	ws := make([]Write, n)
	for i := range ws {
		ws[i] = upd(start+int64(i)*tick, writer)
	}
	return ws
}

func record(r *Referee, ws ...[]Write) {
	for _, w := range ws {
		for _, x := range w {
			r.Record(x)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGaps(t *testing.T) {
	// One hole: updates 0..100 and 104..200; the 10 ms gap is 100 → 104.
	hole := append(series(t0, 101, "a"), series(t0+104*tick, 97, "a")...)
	// Writes that do not change the channels are not motor updates.
	idle := series(t0, 11, "a")
	for i := range idle {
		idle[i].Update = i%2 == 0
	}
	tests := []struct {
		name                 string
		writes               []Write
		updates              int
		maxMs, p99Ms, meanMs float64
		maxAt                int64 // the longest gap's start: the first of equals
	}{
		{"empty", nil, 0, 0, 0, 0, 0},
		{"single update", series(t0, 1, "a"), 1, 0, 0, 0, 0},
		{"steady 400 Hz", series(t0, 401, "a"), 401, 2.5, 2.5, 2.5, t0},
		{"one 10 ms hole", hole, 198, 10, 2.5, 200 * 2.5 / 197, t0 + 100*tick},
		{"non-updates ignored", idle, 6, 5, 5, 5, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{})
			record(r, tt.writes)
			rep := r.Report(0, 0)
			if rep.Updates != tt.updates || !near(rep.MaxGapMs, tt.maxMs) || !near(rep.P99GapMs, tt.p99Ms) || !near(rep.MeanGapMs, tt.meanMs) || rep.MaxGapAt != tt.maxAt {
				t.Errorf("updates %d max %v at %d p99 %v mean %v; want %d %v at %d %v %v",
					rep.Updates, rep.MaxGapMs, rep.MaxGapAt, rep.P99GapMs, rep.MeanGapMs, tt.updates, tt.maxMs, tt.maxAt, tt.p99Ms, tt.meanMs)
			}
		})
	}
}

func TestDoubleDrive(t *testing.T) {
	tests := []struct {
		name         string
		tickHz       float64
		writes       []Write
		double, swit int
		writers      []string
	}{
		{"A then B 0.2 ms later", 0, []Write{upd(t0, "A"), upd(t0+200*us, "B")}, 1, 1, []string{"A", "B"}},
		{"A then B one tick later", 0, []Write{upd(t0, "A"), upd(t0+tick, "B")}, 0, 1, []string{"A", "B"}},
		{"A then B just under half a tick", 0, []Write{upd(t0, "A"), upd(t0+1250*us-1, "B")}, 1, 1, []string{"A", "B"}},
		{"A then B exactly half a tick", 0, []Write{upd(t0, "A"), upd(t0+1250*us, "B")}, 0, 1, []string{"A", "B"}},
		{"A twice in one tick", 0, []Write{upd(t0, "A"), upd(t0+200*us, "A")}, 0, 0, []string{"A"}},
		{"interleaved writers", 0, []Write{upd(t0, "A"), upd(t0+100*us, "B"), upd(t0+tick, "A"), upd(t0+tick+100*us, "B")}, 2, 3, []string{"A", "B"}},
		{"clean handover and back", 0, slices.Concat(series(t0, 10, "A"), series(t0+10*tick, 10, "B"), series(t0+20*tick, 10, "A")), 0, 2, []string{"A", "B"}},
		{"100 Hz loop: 4 ms is the same tick", 100, []Write{upd(t0, "A"), upd(t0+4*ms, "B")}, 1, 1, []string{"A", "B"}},
		{"100 Hz loop: 6 ms is the next tick", 100, []Write{upd(t0, "A"), upd(t0+6*ms, "B")}, 0, 1, []string{"A", "B"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{TickHz: tt.tickHz})
			record(r, tt.writes)
			rep := r.Report(0, 0)
			if rep.DoubleDrive != tt.double || rep.WriterSwitches != tt.swit || !slices.Equal(rep.Writers, tt.writers) {
				t.Errorf("double drive %d switches %d writers %q; want %d %d %q",
					rep.DoubleDrive, rep.WriterSwitches, rep.Writers, tt.double, tt.swit, tt.writers)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	stale := func(t int64, w string, update bool) Write {
		x := upd(t, w)
		x.Refused, x.Update, x.Epoch = true, update, 0
		return x
	}
	tests := []struct {
		name                 string
		writes               []Write
		refused, updates, dd int
		maxMs                float64
		writers              []string
	}{
		{"stale write between updates", []Write{upd(t0, "A"), stale(t0+200*us, "B", true), upd(t0+tick, "A")}, 1, 2, 0, 2.5, []string{"A"}},
		{"stale writes do not fill a hole", []Write{upd(t0, "A"), stale(t0+tick, "B", true), stale(t0+2*tick, "B", false), upd(t0+4*tick, "A")}, 2, 2, 0, 10, []string{"A"}},
		{"only stale writes", []Write{stale(t0, "B", true), stale(t0+tick, "B", true)}, 2, 0, 0, 0, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{})
			record(r, tt.writes)
			rep := r.Report(0, 0)
			if rep.StaleRefused != tt.refused || rep.Updates != tt.updates || rep.DoubleDrive != tt.dd ||
				!near(rep.MaxGapMs, tt.maxMs) || !slices.Equal(rep.Writers, tt.writers) {
				t.Errorf("refused %d updates %d double %d max gap %v writers %q; want %d %d %d %v %q",
					rep.StaleRefused, rep.Updates, rep.DoubleDrive, rep.MaxGapMs, rep.Writers,
					tt.refused, tt.updates, tt.dd, tt.maxMs, tt.writers)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	r := New(Config{})
	// Updates at t0 + 0, 1, ..., 9 ms, the last two recorded out of order.
	for i := range int64(8) {
		r.Record(upd(t0+i*ms, "a"))
	}
	r.Record(upd(t0+9*ms, "a"))
	r.Record(upd(t0+8*ms, "a"))
	r.Observe(Sample{T: t0 + 12*ms})
	tests := []struct {
		name             string
		from, to         int64
		wantFrom, wantTo int64
		updates          int
		maxGapMs         float64
	}{
		{"everything", 0, 0, t0, t0 + 12*ms, 10, 1},
		{"inner", t0 + 3*ms, t0 + 6*ms, t0 + 3*ms, t0 + 6*ms, 4, 1},
		{"to latest", t0 + 7*ms, 0, t0 + 7*ms, t0 + 12*ms, 3, 1},
		{"from start", 0, t0 + 1*ms, t0, t0 + 1*ms, 2, 1},
		{"after the end", t0 + 20*ms, t0 + 30*ms, t0 + 20*ms, t0 + 30*ms, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := r.Report(tt.from, tt.to)
			if rep.From != tt.wantFrom || rep.To != tt.wantTo || rep.Updates != tt.updates || !near(rep.MaxGapMs, tt.maxGapMs) {
				t.Errorf("window [%d, %d] %d updates max gap %v; want [%d, %d] %d %v",
					rep.From, rep.To, rep.Updates, rep.MaxGapMs, tt.wantFrom, tt.wantTo, tt.updates, tt.maxGapMs)
			}
			if want := float64(tt.wantTo-tt.wantFrom) / 1e9; !near(rep.Seconds, want) {
				t.Errorf("seconds %v, want %v", rep.Seconds, want)
			}
			ws := r.Writes(tt.from, tt.to)
			if len(ws) != tt.updates || !slices.IsSortedFunc(ws, func(a, b Write) int { return int(a.T - b.T) }) {
				t.Errorf("Writes returned %d writes, sorted %v; want %d sorted", len(ws), slices.IsSortedFunc(ws, func(a, b Write) int { return int(a.T - b.T) }), tt.updates)
			}
		})
	}
}

func TestRingWrap(t *testing.T) {
	tests := []struct {
		name          string
		n             int
		from          int64
		wantFirst     int64
		wantLen       int
		wantTruncated bool
	}{
		{"not full", 5, 0, t0, 5, false},
		{"exactly full", 8, 0, t0, 8, false},
		{"wrapped, whole log", 20, 0, t0 + 12*tick, 8, true},
		{"wrapped, window in the lost part", 20, t0 + 5*tick, t0 + 12*tick, 8, true},
		{"wrapped, window in the kept part", 20, t0 + 12*tick, t0 + 12*tick, 8, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{LogCap: 8, SampleCap: 8})
			record(r, series(t0, tt.n, "a"))
			for i := range tt.n {
				r.Observe(Sample{T: t0 + int64(i)*tick, TiltDeg: float64(i)})
			}
			ws := r.Writes(tt.from, 0)
			if len(ws) != tt.wantLen || ws[0].T != tt.wantFirst {
				t.Fatalf("Writes kept %d from %d, want %d from %d", len(ws), ws[0].T, tt.wantLen, tt.wantFirst)
			}
			rep := r.Report(tt.from, 0)
			if rep.Updates != tt.wantLen || rep.Samples != tt.wantLen || rep.Truncated != tt.wantTruncated {
				t.Errorf("updates %d samples %d truncated %v; want %d %d %v",
					rep.Updates, rep.Samples, rep.Truncated, tt.wantLen, tt.wantLen, tt.wantTruncated)
			}
			if want := float64(tt.n - 1); rep.AttErrMaxDeg != want {
				t.Errorf("max attitude error %v, want the latest sample's %v", rep.AttErrMaxDeg, want)
			}
		})
	}
}

func TestSamples(t *testing.T) {
	// 200 samples, errors ±1..±200 in shuffled order.
	var ramp []Sample
	for i := range 200 {
		v := float64((i*37)%200 + 1)
		if i%2 == 1 {
			v = -v
		}
		ramp = append(ramp, Sample{T: t0 + int64(i)*ms, TiltDeg: v, AltErrM: v / 100, Airborne: true})
	}
	crash := []Sample{
		{T: t0, Airborne: true},
		{T: t0 + 1*ms, Airborne: true},
		{T: t0 + 2*ms, Crashed: true},
		{T: t0 + 3*ms, Crashed: true},
		{T: t0 + 4*ms}, // reset: flying again
		{T: t0 + 5*ms, Airborne: true},
		{T: t0 + 6*ms, Crashed: true}, // second crash
		{T: t0 + 7*ms, Crashed: true},
	}
	tests := []struct {
		name              string
		samples           []Sample
		from, to          int64
		n                 int
		attP99, attMax    float64
		altP99, altMax    float64
		airborne, crashed bool
		crashedAt         int64
	}{
		{"ramp p99", ramp, 0, 0, 200, 198, 200, 1.98, 2, true, false, 0},
		{"few samples: p99 is the max", ramp[:10], 0, 0, 10, 186, 186, 1.86, 1.86, true, false, 0},
		{"before the crash", crash, 0, t0 + 1*ms, 2, 0, 0, 0, 0, true, false, 0},
		{"first crash", crash, 0, 0, 8, 0, 0, 0, 0, false, true, t0 + 2*ms},
		{"window inside a crash", crash, t0 + 3*ms, t0 + 3*ms, 1, 0, 0, 0, 0, false, true, t0 + 2*ms},
		{"second crash", crash, t0 + 4*ms, 0, 4, 0, 0, 0, 0, false, true, t0 + 6*ms},
		{"flying again", crash, t0 + 4*ms, t0 + 5*ms, 2, 0, 0, 0, 0, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{})
			for _, s := range tt.samples {
				r.Observe(s)
			}
			rep := r.Report(tt.from, tt.to)
			got := fmt.Sprint(rep.Samples, rep.AttErrP99Deg, rep.AttErrMaxDeg, rep.AltErrP99M, rep.AltErrMaxM, rep.Airborne, rep.Crashed, rep.CrashedAt)
			want := fmt.Sprint(tt.n, tt.attP99, tt.attMax, tt.altP99, tt.altMax, tt.airborne, tt.crashed, tt.crashedAt)
			if got != want {
				t.Errorf("samples, att p99, att max, alt p99, alt max, airborne, crashed, crashed at =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestReset(t *testing.T) {
	r := New(Config{LogCap: 4})
	record(r, series(t0, 10, "a"))
	r.Observe(Sample{T: t0, Crashed: true})
	r.Reset()
	if rep := r.Report(0, 0); rep.Updates != 0 || rep.Samples != 0 || rep.Truncated || rep.Crashed {
		t.Errorf("after Reset: %+v, want empty", rep)
	}
	record(r, series(t0+sec(1), 3, "b"))
	if rep := r.Report(0, 0); rep.Updates != 3 || !slices.Equal(rep.Writers, []string{"b"}) {
		t.Errorf("after Reset and 3 updates: %+v", rep)
	}
}

func sec(s int64) int64 { return s * 1e9 }

func TestJSON(t *testing.T) {
	r := New(Config{})
	record(r, series(t0, 3, "a"))
	b, err := json.Marshal(r.Report(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{
		"from", "to", "seconds", "updates", "writers", "max_gap_ms", "p99_gap_ms", "mean_gap_ms",
		"double_drive", "writer_switches", "stale_refused", "samples", "att_err_p99_deg", "att_err_max_deg",
		"alt_err_p99_m", "alt_err_max_m", "airborne", "crashed", "crashed_at", "truncated",
	} {
		if !strings.Contains(string(b), `"`+key+`":`) {
			t.Errorf("JSON %s lacks %q", b, key)
		}
	}
	if empty, _ := json.Marshal(New(Config{}).Report(0, 0)); !strings.Contains(string(empty), `"writers":[]`) {
		t.Errorf("empty report JSON %s, want writers []", empty)
	}
}

func TestConcurrent(t *testing.T) {
	r := New(Config{LogCap: 1000, SampleCap: 1000})
	const n = 5000
	var wg sync.WaitGroup
	for _, w := range []string{"a", "b"} {
		wg.Go(func() {
			for i := range int64(n) {
				r.Record(upd(t0+i*tick, w))
			}
		})
	}
	wg.Go(func() {
		for i := range int64(n) {
			r.Observe(Sample{T: t0 + i*ms, Airborne: true})
		}
	})
	wg.Go(func() {
		for range 50 {
			r.Report(0, 0)
			r.Writes(t0, 0)
		}
	})
	wg.Wait()
	rep := r.Report(0, 0)
	if rep.Updates != 1000 || rep.Samples != 1000 || !rep.Truncated {
		t.Errorf("after the race: %d updates %d samples truncated %v, want 1000 1000 true", rep.Updates, rep.Samples, rep.Truncated)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	r := New(Config{LogCap: 64, SampleCap: 64})
	w := upd(t0, "writer")
	s := Sample{T: t0, TiltDeg: 1}
	allocs := testing.AllocsPerRun(1000, func() {
		w.T += tick
		r.Record(w)
		s.T += ms
		r.Observe(s)
	})
	if allocs != 0 {
		t.Errorf("Record and Observe allocate %v times per call, want 0", allocs)
	}
}

func BenchmarkRecord(b *testing.B) {
	r := New(Config{LogCap: 1 << 16})
	w := upd(t0, "writer")
	b.ReportAllocs()
	for b.Loop() {
		w.T += tick
		r.Record(w)
	}
}

func BenchmarkObserve(b *testing.B) {
	r := New(Config{SampleCap: 1 << 16})
	s := Sample{T: t0, TiltDeg: 1, AltErrM: 0.1, Airborne: true}
	b.ReportAllocs()
	for b.Loop() {
		s.T += ms
		r.Observe(s)
	}
}

func TestTakebacks(t *testing.T) {
	hold := int64(lease.HolderTimeout)
	at := func(ws []Write, epoch uint64) []Write {
		for i := range ws {
			ws[i].Epoch = epoch
		}
		return ws
	}
	release := func(tm int64, writer string, epoch uint64) []Write {
		return []Write{{T: tm, Writer: writer, Epoch: epoch, Released: true}}
	}
	tests := []struct {
		name             string
		writes           [][]Write
		takebacks, false int
	}{
		{"planned cut-over: a released before b", [][]Write{
			at(series(t0, 40, "a"), 1), release(t0+40*tick-tick/2, "a", 1), at(series(t0+40*tick, 40, "b"), 2),
		}, 0, 0},
		{"a release of an older epoch does not count", [][]Write{
			release(t0-tick, "a", 1), at(series(t0, 40, "a"), 3), at(series(t0+40*tick, 40, "b"), 4),
		}, 1, 1},
		{"take-back from a writer silent for the holder timeout and more", [][]Write{
			at(series(t0, 40, "a"), 2), at(series(t0+39*tick+hold+10*ms, 40, "b"), 3),
		}, 1, 0},
		{"take-back from a writer that was still writing", [][]Write{
			at(series(t0, 40, "a"), 2), at(series(t0+40*tick, 40, "b"), 3),
		}, 1, 1},
		{"take-back 1 ms short of the holder timeout is false", [][]Write{
			at(series(t0, 40, "a"), 2), at(series(t0+39*tick+hold-ms, 40, "b"), 3),
		}, 1, 1},
		{"hand-back then take-back", [][]Write{
			at(series(t0, 40, "a"), 1), release(t0+40*tick-tick/2, "a", 1),
			at(series(t0+40*tick, 40, "b"), 2),
			at(series(t0+79*tick+hold, 40, "a"), 3), // b went silent for the holder timeout
		}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{})
			record(r, tt.writes...)
			rep := r.Report(0, 0)
			if rep.Takebacks != tt.takebacks || rep.FalseTakebacks != tt.false {
				t.Fatalf("takebacks %d, false %d; want %d, %d", rep.Takebacks, rep.FalseTakebacks, tt.takebacks, tt.false)
			}
			want := 0
			for _, ws := range tt.writes {
				for _, w := range ws {
					if !w.Released {
						want++
					}
				}
			}
			if rep.Updates != want {
				t.Fatalf("updates %d, want %d: a release is not a motor update", rep.Updates, want)
			}
		})
	}
	// A configured timeout replaces lease.HolderTimeout.
	r := New(Config{HolderTimeout: lease.HolderTimeout + 50*time.Millisecond})
	record(r, at(series(t0, 40, "a"), 2), at(series(t0+39*tick+hold+10*ms, 40, "b"), 3))
	if rep := r.Report(0, 0); rep.FalseTakebacks != 1 {
		t.Fatalf("with a longer holder timeout a take-back just past the default one is false; got %d", rep.FalseTakebacks)
	}
}

// TestRingWindow: a window holds exactly the values in it, found by
// binary search while values come in time order (ties, a ring that
// wrapped) and by a scan once one comes out of order.
func TestRingWindow(t *testing.T) {
	times := []int64{1, 2, 2, 3, 5, 5, 5, 8, 9, 12, 13, 13, 20, 21}
	tests := []struct {
		name     string
		cap      int
		times    []int64
		unsorted bool
	}{
		{"in order", 32, times, false},
		{"in order, wrapped", 5, times, false},
		{"one out of order", 32, append(slices.Clone(times), 4, 22), true},
		{"out of order, wrapped", 5, append(slices.Clone(times), 4, 22), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing[int64](tt.cap)
			for _, ts := range tt.times {
				r.push(ts, ts)
			}
			if r.unsorted != tt.unsorted {
				t.Fatalf("unsorted = %v, want %v", r.unsorted, tt.unsorted)
			}
			kept := tt.times[max(0, len(tt.times)-tt.cap):]
			if want := slices.Min(kept); r.minTime() != want {
				t.Errorf("minTime %d, want %d", r.minTime(), want)
			}
			for from := int64(0); from <= 23; from++ {
				for to := from - 1; to <= 23; to++ {
					var want []int64
					for _, ts := range kept {
						if ts >= from && ts <= to {
							want = append(want, ts)
						}
					}
					if got := r.appendWindow(nil, from, to); !slices.Equal(got, want) {
						t.Fatalf("window [%d, %d] = %v, want %v", from, to, got, want)
					}
				}
			}
		})
	}
}

// BenchmarkReportRecent is the soak's report at the end of an update: the
// last 6 s of a referee that has kept 300 s of flight (1 kHz samples, a
// 250 Hz loop's writes).
func BenchmarkReportRecent(b *testing.B) {
	r := New(Config{TickHz: 250})
	end := t0 + 300*int64(time.Second)
	for ts := t0; ts < end; ts += ms {
		r.Observe(Sample{T: ts, Airborne: true})
		if (ts-t0)%(4*ms) == 0 {
			r.Record(upd(ts, "a"))
		}
	}
	b.ResetTimer()
	for range b.N {
		r.Report(end-6*int64(time.Second), end)
	}
}
