package referee

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
)

// Config configures a Referee. The zero Config is a 400 Hz flight loop with
// 1<<20 writes and 1<<20 samples kept, and 1<<16 of each camera log.
type Config struct {
	TickHz    float64 // flight-loop rate, Hz; zero or negative = 400
	LogCap    int     // writes kept, the most recent first; zero or negative = 1<<20
	SampleCap int     // samples kept, the most recent first; zero or negative = 1<<20
	// CameraCap bounds each camera log (reads with packets, delivered
	// frames, configuration commands); zero or negative = 1<<16, about 13
	// minutes of a reader that reads every frame.
	CameraCap int
	// HolderTimeout is how long a writer's motor updates may stop before a
	// take-back from it is justified; zero or negative =
	// lease.HolderTimeout, the value the product's standby uses.
	HolderTimeout time.Duration
}

// Write is one actuator write on the virtual drone's motor controller.
type Write struct {
	T       int64     `json:"t"`       // CLOCK_MONOTONIC ns
	Writer  string    `json:"writer"`  // who wrote (a process or agent name)
	Epoch   uint64    `json:"epoch"`   // the writer's fencing epoch
	Pulses  [4]uint16 `json:"pulses"`  // µs per motor channel after the write
	Update  bool      `json:"update"`  // the write changed the motor channel registers
	Refused bool      `json:"refused"` // the fence refused it (stale epoch): not applied
	// Released marks a release, not a write: Writer handed over Epoch (a
	// planned cut-over). Nothing reached the chip.
	Released bool `json:"released,omitempty"`
}

// Sample is one flight-truth sample from the simulator.
type Sample struct {
	T        int64   `json:"t"`         // CLOCK_MONOTONIC ns
	TiltDeg  float64 `json:"tilt_deg"`  // attitude error, degrees (tilt from level while holding level)
	AltErrM  float64 `json:"alt_err_m"` // altitude error, m
	Airborne bool    `json:"airborne"`
	Crashed  bool    `json:"crashed"`
}

// Report is the referee's verdict on a window of time [From, To]. Only
// writes and samples inside the window count: the gaps, switches and double
// drives compare consecutive motor updates that both lie inside it. Every
// figure that has nothing to measure is zero.
type Report struct {
	From    int64   `json:"from"`    // window start, ns (inclusive)
	To      int64   `json:"to"`      // window end, ns (inclusive)
	Seconds float64 `json:"seconds"` // To − From in seconds

	Updates int      `json:"updates"` // motor updates (accepted writes with Update) in the window
	Writers []string `json:"writers"` // distinct writers of motor updates, in order of first update; never nil

	MaxGapMs  float64 `json:"max_gap_ms"`  // longest interval between consecutive motor updates
	MaxGapAt  int64   `json:"max_gap_at"`  // when it began (the earlier update), ns; 0 without one
	P99GapMs  float64 `json:"p99_gap_ms"`  // nearest-rank 99th percentile of those intervals
	MeanGapMs float64 `json:"mean_gap_ms"` // their mean

	DoubleDrive    int `json:"double_drive"`    // motor updates by a new writer less than half a tick after the previous one
	WriterSwitches int `json:"writer_switches"` // motor updates by a writer other than the previous one's
	StaleRefused   int `json:"stale_refused"`   // writes refused by the fence
	// Takebacks are writer switches where the previous writer had not
	// released its epoch: the new writer took the motors from it instead
	// of being handed them. FalseTakebacks are those where the previous
	// writer's last motor update was less than HolderTimeout before the
	// new writer's first: it was still writing, and should have been
	// left to fly.
	Takebacks      int `json:"takebacks"`
	FalseTakebacks int `json:"false_takebacks"`

	Samples      int     `json:"samples"`         // flight-truth samples in the window
	AttErrP99Deg float64 `json:"att_err_p99_deg"` // nearest-rank 99th percentile of |TiltDeg|
	AttErrMaxDeg float64 `json:"att_err_max_deg"` // maximum of |TiltDeg|
	AltErrP99M   float64 `json:"alt_err_p99_m"`   // nearest-rank 99th percentile of |AltErrM|
	AltErrMaxM   float64 `json:"alt_err_max_m"`   // maximum of |AltErrM|

	Airborne  bool  `json:"airborne"`   // the last sample in the window was airborne
	Crashed   bool  `json:"crashed"`    // some sample in the window was crashed
	CrashedAt int64 `json:"crashed_at"` // start of that crash (it may precede From), or 0

	// Truncated is set when the rings have overwritten writes or samples
	// that the window asked for, so the figures cover only what was kept.
	Truncated bool `json:"truncated"`
}

// Referee records writes and samples and reports on them. The zero Referee
// is not usable; call New.
type Referee struct {
	halfTick int64 // ns
	holder   int64 // HolderTimeout, ns

	mu      sync.Mutex
	writes  ring[Write]
	samples ring[sampleRec]
	latest  int64 // largest T recorded or observed
	inCrash bool  // the last observed sample was crashed
	onset   int64 // T of the first sample of the current crash
	cam     camera
}

// sampleRec is a kept sample with the start time of the crash it belongs to.
type sampleRec struct {
	Sample
	onset int64
}

// New returns a referee with its rings allocated.
func New(cfg Config) *Referee {
	if cfg.TickHz <= 0 {
		cfg.TickHz = 400
	}
	if cfg.LogCap <= 0 {
		cfg.LogCap = 1 << 20
	}
	if cfg.SampleCap <= 0 {
		cfg.SampleCap = 1 << 20
	}
	if cfg.CameraCap <= 0 {
		cfg.CameraCap = 1 << 16
	}
	if cfg.HolderTimeout <= 0 {
		cfg.HolderTimeout = lease.HolderTimeout
	}
	return &Referee{
		halfTick: int64(math.Round(1e9 / cfg.TickHz / 2)),
		holder:   int64(cfg.HolderTimeout),
		writes:   newRing[Write](cfg.LogCap),
		samples:  newRing[sampleRec](cfg.SampleCap),
		cam:      newCamera(cfg.CameraCap),
	}
}

// Record logs one actuator write. It is O(1) and does not allocate.
func (r *Referee) Record(w Write) {
	r.mu.Lock()
	r.writes.push(w, w.T)
	r.latest = max(r.latest, w.T)
	r.mu.Unlock()
}

// Observe logs one flight-truth sample. It is O(1) and does not allocate.
func (r *Referee) Observe(s Sample) {
	r.mu.Lock()
	if s.Crashed && !r.inCrash {
		r.onset = s.T
	}
	r.inCrash = s.Crashed
	rec := sampleRec{Sample: s}
	if s.Crashed {
		rec.onset = r.onset
	}
	r.samples.push(rec, s.T)
	r.latest = max(r.latest, s.T)
	r.mu.Unlock()
}

// Reset forgets every write, sample and camera record, keeping the
// allocated rings.
func (r *Referee) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes.reset()
	r.samples.reset()
	r.latest, r.inCrash, r.onset = 0, false, 0
	r.cam.reads.reset()
	r.cam.frames.reset()
	r.cam.commands.reset()
	clear(r.cam.track)
	r.cam.lastVideo, r.cam.latest = 0, 0
}

// Writes returns a copy of the kept writes with from ≤ T ≤ to, sorted by T.
// A zero to means up to the latest time recorded; a zero from means from the
// oldest kept entry.
func (r *Referee) Writes(from, to int64) []Write {
	w, _, _, _, _ := r.window(from, to)
	return w
}

// Report judges the window from ≤ T ≤ to. A zero to means up to the latest
// time recorded or observed; a zero from means from the oldest kept write or
// sample.
func (r *Referee) Report(from, to int64) Report {
	writes, samples, from, to, truncated := r.window(from, to)
	rep := Report{From: from, To: to, Writers: []string{}, Truncated: truncated}
	if to > from {
		rep.Seconds = float64(to-from) / 1e9
	}

	// Motor updates, gaps, double drive.
	var gaps []float64
	var prev *Write
	released := map[string]uint64{} // writer -> highest epoch it released in the window
	for i := range writes {
		w := &writes[i]
		if w.Released {
			released[w.Writer] = max(released[w.Writer], w.Epoch)
			continue
		}
		if w.Refused {
			rep.StaleRefused++
			continue
		}
		if !w.Update {
			continue
		}
		rep.Updates++
		if !slices.Contains(rep.Writers, w.Writer) {
			rep.Writers = append(rep.Writers, w.Writer)
		}
		if prev != nil {
			d := w.T - prev.T
			ms := float64(d) / 1e6
			gaps = append(gaps, ms)
			if ms > rep.MaxGapMs {
				rep.MaxGapMs, rep.MaxGapAt = ms, prev.T
			}
			if w.Writer != prev.Writer {
				rep.WriterSwitches++
				if d < r.halfTick {
					rep.DoubleDrive++
				}
				if released[prev.Writer] < prev.Epoch {
					rep.Takebacks++
					if d < r.holder {
						rep.FalseTakebacks++
					}
				}
			}
		}
		prev = w
	}
	if len(gaps) > 0 {
		var sum float64
		for _, g := range gaps {
			sum += g
		}
		rep.MeanGapMs = sum / float64(len(gaps))
		slices.Sort(gaps)
		rep.P99GapMs = p99(gaps)
	}

	// Flight truth.
	rep.Samples = len(samples)
	if len(samples) > 0 {
		att := make([]float64, len(samples))
		alt := make([]float64, len(samples))
		for i, s := range samples {
			att[i] = math.Abs(s.TiltDeg)
			alt[i] = math.Abs(s.AltErrM)
			if s.Crashed && !rep.Crashed {
				rep.Crashed, rep.CrashedAt = true, s.onset
			}
		}
		rep.Airborne = samples[len(samples)-1].Airborne
		slices.Sort(att)
		slices.Sort(alt)
		rep.AttErrMaxDeg, rep.AttErrP99Deg = att[len(att)-1], p99(att)
		rep.AltErrMaxM, rep.AltErrP99M = alt[len(alt)-1], p99(alt)
	}
	return rep
}

// window copies the writes and samples in the window, sorted by time, and
// returns the window's effective bounds and whether entries it asked for
// were overwritten. It holds the lock only to copy: the simulator's
// real-time threads take it at every write and sample.
func (r *Referee) window(from, to int64) (writes []Write, samples []sampleRec, efrom, eto int64, truncated bool) {
	r.mu.Lock()
	if r.writes.n == 0 && r.samples.n == 0 {
		r.mu.Unlock()
		return nil, nil, from, to, false
	}
	if to == 0 {
		to = r.latest
	}
	truncated = r.writes.truncates(from) || r.samples.truncates(from)
	if from == 0 {
		from = min(r.writes.minTime(), r.samples.minTime())
	}
	writes = r.writes.appendWindow(nil, from, to)
	samples = r.samples.appendWindow(nil, from, to)
	sortW, sortS := r.writes.unsorted, r.samples.unsorted
	r.mu.Unlock()
	if sortW {
		slices.SortStableFunc(writes, func(a, b Write) int { return cmp.Compare(a.T, b.T) })
	}
	if sortS {
		slices.SortStableFunc(samples, func(a, b sampleRec) int { return cmp.Compare(a.T, b.T) })
	}
	return writes, samples, from, to, truncated
}

// p99 returns the nearest-rank 99th percentile of sorted, which is not
// empty: the value at rank ⌈0.99·n⌉.
func p99(sorted []float64) float64 {
	n := len(sorted)
	rank := (99*n + 99) / 100
	return sorted[rank-1]
}

// ring keeps the most recent len(buf) values with their times; the times
// sit in their own slice so that window scans read little memory. Values
// pushed in time order, as the drone's are (its writes are stamped under
// one lock, its samples come from one thread), are found by binary search:
// a window costs its own length, not the ring's. A report's scan of a
// whole ring held the referee's lock for milliseconds, which a busy
// machine stretched while the simulator's real-time threads waited on it.
type ring[T any] struct {
	buf      []T
	ts       []int64 // ts[i] is the time of buf[i]
	start, n int     // oldest index, count
	evicted  bool    // a value has been overwritten
	evictedT int64   // largest time of an overwritten value
	unsorted bool    // a value came with a time before the newest's: windows scan every value
}

func newRing[T any](n int) ring[T] {
	return ring[T]{buf: make([]T, n), ts: make([]int64, n)}
}

// push appends v, recorded at time t, overwriting the oldest value when full.
func (r *ring[T]) push(v T, t int64) {
	if r.n > 0 && t < r.ts[r.index(r.n-1)] { // while in order, the newest is the last pushed
		r.unsorted = true
	}
	var i int
	if r.n < len(r.buf) {
		i = r.index(r.n)
		r.n++
	} else {
		i = r.start
		if old := r.ts[i]; !r.evicted || old > r.evictedT {
			r.evictedT = old
		}
		r.evicted = true
		if r.start++; r.start == len(r.buf) {
			r.start = 0
		}
	}
	r.buf[i], r.ts[i] = v, t
}

// index returns the buffer index of the k-th oldest value.
func (r *ring[T]) index(k int) int {
	i := r.start + k
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	return i
}

// minTime returns the earliest time kept, or math.MaxInt64 if empty.
func (r *ring[T]) minTime() int64 {
	if r.n > 0 && !r.unsorted {
		return r.ts[r.start]
	}
	m := int64(math.MaxInt64)
	for _, t := range r.ts[:r.n] { // the kept values fill ts[:n] in some rotation
		m = min(m, t)
	}
	return m
}

// appendWindow appends the kept values with from ≤ t ≤ to to dst, oldest
// kept first (so in time order unless r.unsorted).
func (r *ring[T]) appendWindow(dst []T, from, to int64) []T {
	if r.unsorted {
		for k := range r.n {
			if i := r.index(k); r.ts[i] >= from && r.ts[i] <= to {
				dst = append(dst, r.buf[i])
			}
		}
		return dst
	}
	lo := sort.Search(r.n, func(k int) bool { return r.ts[r.index(k)] >= from })
	hi := sort.Search(r.n, func(k int) bool { return r.ts[r.index(k)] > to })
	dst = slices.Grow(dst, hi-lo)
	for k := lo; k < hi; k++ {
		dst = append(dst, r.buf[r.index(k)])
	}
	return dst
}

// truncates reports whether values at or after from (any value if from is
// zero) may have been overwritten.
func (r *ring[T]) truncates(from int64) bool {
	return r.evicted && (from == 0 || r.evictedT >= from)
}

func (r *ring[T]) reset() {
	r.start, r.n, r.evicted, r.evictedT = 0, 0, false, 0
	r.unsorted = false
}
