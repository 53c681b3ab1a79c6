package referee

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// StreamIdle is how long after the last video packet read the camera still
// counts as streaming for CameraCommand.Streaming: five frame periods, the
// pause after which a Lepton reader must resynchronise anyway.
const StreamIdle = 200 * time.Millisecond

// CameraPacket is one VoSPI packet a reader clocked out of the camera.
type CameraPacket struct {
	Discard bool   // a discard packet (no frame ready): ignored
	Frame   uint32 // the camera's frame counter
	Number  int    // the packet's true number in its frame
	Count   int    // packets in its frame
	Corrupt bool   // a corruption was injected into it
}

// CameraRead is one SPI transaction on the camera's video.
type CameraRead struct {
	T       int64          // CLOCK_MONOTONIC ns
	Reader  string         // the bus client's name
	Conn    uint64         // the bus connection: frames are followed per connection
	Packets []CameraPacket // the packets it completed, in order
}

// CameraFrame is a frame delivered to a reader, with what the image shows.
type CameraFrame struct {
	T        int64   `json:"t"`         // when its last packet was read, CLOCK_MONOTONIC ns
	Reader   string  `json:"reader"`    // who read it
	Frame    uint32  `json:"frame"`     // the camera's frame counter (27 Hz)
	Image    uint32  `json:"image"`     // the frame counter its image was rendered at
	RenderT  int64   `json:"render_t"`  // the truth time the image was rendered from, or 0 if unknown
	RollDeg  float64 `json:"roll_deg"`  // the attitude and altitude it shows
	PitchDeg float64 `json:"pitch_deg"` //
	AltM     float64 `json:"alt_m"`     //
}

// CameraCommand is a CCI command that changes the camera's configuration
// (a SET, or a RUN other than a ping).
type CameraCommand struct {
	T         int64  `json:"t"`         // CLOCK_MONOTONIC ns
	Writer    string `json:"writer"`    // the bus client's name
	Command   uint16 `json:"command"`   // the command word written, type bits included
	Streaming bool   `json:"streaming"` // a video packet was read less than StreamIdle before it
}

// CameraReader is what one reader got in a window.
type CameraReader struct {
	Frames  int `json:"frames"`  // frames delivered to it
	Packets int `json:"packets"` // video and telemetry packets it read (discards excluded)
	Corrupt int `json:"corrupt"` // of those, packets with an injected corruption
}

// CameraReport is the referee's verdict on the camera over [From, To]. A
// frame is delivered to a reader when one bus connection of the reader
// read all of the frame's packets, in order, none corrupted.
type CameraReport struct {
	From    int64   `json:"from"`
	To      int64   `json:"to"`
	Seconds float64 `json:"seconds"`

	Readers       map[string]CameraReader `json:"readers"`          // by reader name; never nil
	Frames        int                     `json:"frames"`           // frames delivered, all readers
	MaxFrameGapMs float64                 `json:"max_frame_gap_ms"` // longest interval between consecutive delivered frames, any reader
	Corrupt       int                     `json:"corrupt_packets"`  // packets read with an injected corruption

	// ConfigWhileStreaming counts configuration commands received while
	// the video was being read (an Attach that resets a streaming camera
	// shows up here); ConfigCommands lists every configuration command in
	// the window, streaming or not. Never nil.
	ConfigWhileStreaming int             `json:"config_while_streaming"`
	ConfigCommands       []CameraCommand `json:"config_commands"`

	Truncated bool `json:"truncated"` // the logs overwrote entries the window asked for
}

// readRec is a logged CameraRead with packets.
type readRec struct {
	reader  string
	packets int
	corrupt int
}

// frameTrack follows one connection through a frame.
type frameTrack struct {
	active bool
	frame  uint32
	next   int
	ok     bool
}

// camera is the referee's camera state, guarded by Referee.mu.
type camera struct {
	reads     ring[readRec]
	frames    ring[CameraFrame]
	commands  ring[CameraCommand]
	track     map[uint64]*frameTrack
	lastVideo int64 // T of the last read with packets, or 0
	latest    int64
}

func newCamera(n int) camera {
	return camera{
		reads:    newRing[readRec](n),
		frames:   newRing[CameraFrame](n),
		commands: newRing[CameraCommand](n),
		track:    map[uint64]*frameTrack{},
	}
}

// maxTracked bounds the connections followed at once; past it the oldest
// partial frames are forgotten (a bus has a handful of clients).
const maxTracked = 256

// RecordCameraRead logs one read of the camera's video and appends to
// delivered the frame counters of the frames it completed for its
// connection; the caller logs each with RecordCameraFrame. Reads with only
// discard packets are not logged.
func (r *Referee) RecordCameraRead(rd CameraRead, delivered []uint32) []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.cam
	st := c.track[rd.Conn]
	if st == nil {
		if len(c.track) >= maxTracked {
			clear(c.track)
		}
		st = &frameTrack{}
		c.track[rd.Conn] = st
	}
	rec := readRec{reader: rd.Reader}
	for _, p := range rd.Packets {
		if p.Discard {
			continue
		}
		rec.packets++
		if p.Corrupt {
			rec.corrupt++
		}
		switch {
		case p.Number == 0:
			*st = frameTrack{active: true, frame: p.Frame, next: 1, ok: !p.Corrupt}
		case st.active && st.frame == p.Frame && st.next == p.Number:
			st.next++
			st.ok = st.ok && !p.Corrupt
		default:
			st.active = false
		}
		if st.active && st.next == p.Count {
			if st.ok {
				delivered = append(delivered, p.Frame)
			}
			st.active = false
		}
	}
	if rec.packets > 0 {
		c.reads.push(rec, rd.T)
		c.lastVideo = max(c.lastVideo, rd.T)
		c.latest = max(c.latest, rd.T)
	}
	return delivered
}

// RecordCameraFrame logs a delivered frame.
func (r *Referee) RecordCameraFrame(f CameraFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cam.frames.push(f, f.T)
	r.cam.latest = max(r.cam.latest, f.T)
}

// RecordCameraCommand logs a configuration command (see CameraCommand),
// setting its Streaming from the reads recorded so far.
func (r *Referee) RecordCameraCommand(t int64, writer string, command uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.cam
	streaming := c.lastVideo != 0 && t-c.lastVideo <= int64(StreamIdle)
	c.commands.push(CameraCommand{T: t, Writer: writer, Command: command, Streaming: streaming}, t)
	c.latest = max(c.latest, t)
}

// CameraFrames returns the delivered frames with from ≤ T ≤ to, sorted by
// T; never nil. A zero to means up to the latest time recorded; a zero from
// means from the oldest kept.
func (r *Referee) CameraFrames(from, to int64) []CameraFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	if to == 0 {
		to = max(r.cam.latest, r.latest)
	}
	fs := r.cam.frames.appendWindow([]CameraFrame{}, from, to)
	slices.SortStableFunc(fs, func(a, b CameraFrame) int { return cmp.Compare(a.T, b.T) })
	return fs
}

// CameraReport judges the camera over from ≤ T ≤ to, with the zero
// conventions of Report.
func (r *Referee) CameraReport(from, to int64) CameraReport {
	r.mu.Lock()
	c := &r.cam
	if to == 0 {
		to = max(c.latest, r.latest)
	}
	truncated := c.reads.truncates(from) || c.frames.truncates(from) || c.commands.truncates(from)
	if from == 0 {
		from = min(c.reads.minTime(), c.frames.minTime(), c.commands.minTime())
		if from == math.MaxInt64 { // nothing logged: an empty window at to
			from = to
		}
	}
	type readAt struct {
		readRec
		t int64
	}
	var reads []readAt
	for k := range c.reads.n {
		i := c.reads.index(k)
		if t := c.reads.ts[i]; t >= from && t <= to {
			reads = append(reads, readAt{c.reads.buf[i], t})
		}
	}
	frames := c.frames.appendWindow(nil, from, to)
	cmds := c.commands.appendWindow(nil, from, to)
	r.mu.Unlock()

	rep := CameraReport{
		From: from, To: to,
		Readers:        map[string]CameraReader{},
		ConfigCommands: []CameraCommand{},
		Truncated:      truncated,
	}
	if to > from {
		rep.Seconds = float64(to-from) / 1e9
	}
	for _, rd := range reads {
		cr := rep.Readers[rd.reader]
		cr.Packets += rd.packets
		cr.Corrupt += rd.corrupt
		rep.Readers[rd.reader] = cr
		rep.Corrupt += rd.corrupt
	}
	slices.SortStableFunc(frames, func(a, b CameraFrame) int { return cmp.Compare(a.T, b.T) })
	for i, f := range frames {
		cr := rep.Readers[f.Reader]
		cr.Frames++
		rep.Readers[f.Reader] = cr
		if i > 0 {
			rep.MaxFrameGapMs = max(rep.MaxFrameGapMs, float64(f.T-frames[i-1].T)/1e6)
		}
	}
	rep.Frames = len(frames)
	slices.SortStableFunc(cmds, func(a, b CameraCommand) int { return cmp.Compare(a.T, b.T) })
	for _, cmd := range cmds {
		if cmd.Streaming {
			rep.ConfigWhileStreaming++
		}
	}
	rep.ConfigCommands = append(rep.ConfigCommands, cmds...)
	return rep
}
