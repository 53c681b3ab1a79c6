package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/hw/camera/thermal"
)

// Limits on what one message may hold.
const (
	maxMotors  = 16 // outputs in one telemetry message
	maxMarkers = 20 // cut-over markers kept per drone
	fpsWindow  = 2 * time.Second
	maxComment = 512 // bytes of a frame's comment passed to the page
)

// drone is one drone's picture. The Fleet's lock guards it.
type drone struct {
	sum      Drone
	last     *Telemetry
	hist     []sample // oldest first
	markers  []Marker
	updates  []*Update // oldest first
	byCmd    map[string]*Update
	cam      Camera
	camTimes []time.Time // arrivals within fpsWindow
	frame    []byte
	problems map[string]*Warning // by topic kind
}

type sample struct {
	at               time.Time
	alt, roll, pitch float64
	motors           [Motors]float64 // NaN: the message had fewer
}

func newDrone(id string) *drone {
	return &drone{
		sum:      Drone{Type: TypeDrone, ID: id, Committed: map[string]string{}, Owner: map[string]string{}},
		byCmd:    map[string]*Update{},
		cam:      Camera{Type: TypeCamera, Drone: id},
		problems: map[string]*Warning{},
	}
}

func (d *drone) warning(kind string) *Warning {
	if d.problems[kind] == nil {
		d.problems[kind] = &Warning{Type: TypeWarning, Drone: d.sum.ID, Topic: kind}
	}
	return d.problems[kind]
}

// checkDrone checks the drone a payload names against its topic's.
func (d *drone) checkDrone(named string) error {
	if named != "" && named != d.sum.ID {
		return fmt.Errorf("the message says drone %q on drone %s's topic", named, d.sum.ID)
	}
	return nil
}

func (d *drone) telemetry(payload []byte, at time.Time, keep time.Duration) ([]any, error) {
	var t report.Telemetry
	if err := decode(payload, &t); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if err := d.checkDrone(t.Drone); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if len(t.Motors) > maxMotors {
		return nil, fmt.Errorf("telemetry: %d motor outputs, more than %d", len(t.Motors), maxMotors)
	}
	if t.Motors == nil {
		t.Motors = []float64{} // the page reads a list, empty or not
	}
	msg := &Telemetry{Type: TypeTelemetry, Drone: d.sum.ID, At: MillisOf(at), Telemetry: t}
	if d.last != nil && t.Epoch != d.last.Telemetry.Epoch && t.Epoch != 0 {
		m := Marker{At: msg.At, Epoch: t.Epoch, From: d.last.Telemetry.Instance, To: t.Instance, Version: t.Version}
		msg.Marker = &m
		d.markers = append(d.markers, m)
		if len(d.markers) > maxMarkers {
			d.markers = d.markers[1:]
		}
	}
	d.last = msg
	s := sample{at: at, alt: t.AltM, roll: t.RollDeg, pitch: t.PitchDeg}
	for i := range s.motors {
		s.motors[i] = math.NaN()
		if i < len(t.Motors) {
			s.motors[i] = t.Motors[i]
		}
	}
	d.hist = append(d.hist, s)
	cut := 0
	for cut < len(d.hist) && at.Sub(d.hist[cut].at) > keep {
		cut++
	}
	d.hist = d.hist[cut:]
	return []any{msg}, nil
}

func (d *drone) state(payload []byte) ([]any, error) {
	var st report.State
	if err := decode(payload, &st); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := d.checkDrone(st.Drone); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	d.sum.Known, d.sum.Online, d.sum.Updating = true, st.Online, st.Updating
	// The last will carries no releases: keep what the drone said last.
	if st.Online || st.Committed != nil {
		d.sum.Committed = orEmpty(st.Committed)
		d.sum.Owner = orEmpty(st.Owner)
	}
	return []any{d.sum}, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func (d *drone) event(payload []byte, at time.Time, keep int) ([]any, error) {
	var ev report.Event
	if err := decode(payload, &ev); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if err := d.checkDrone(ev.Drone); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if ev.Phase == "" {
		return nil, errors.New("event: no phase")
	}
	key := ev.Command
	if key == "" {
		// A refusal of a command the agent could not read: an entry
		// of its own.
		key = fmt.Sprintf("unreadable@%d", at.UnixNano())
	}
	u := d.update(key, at, keep)
	u.Phases = append(u.Phases, Phase{Phase: ev.Phase, AtMs: Millis(at.Sub(u.sent).Seconds() * 1e3),
		Outcome: ev.Outcome, Error: ev.Error, From: ev.From, To: ev.To, Epoch: ev.Epoch, Bytes: ev.Bytes})
	// The first final event decides. A later one is noted, not believed:
	// a broker that sends a command again while the drone still works on
	// it (nats-server does after its ack wait) gets the copy refused as a
	// replay once the drone has reported the outcome.
	if push.Ends(ev) && !u.Done {
		u.Done = true
		switch {
		case ev.Phase == report.PhaseDeployed:
			u.Outcome, u.Reason = report.PhaseDeployed, ""
		case push.Succeeded(ev):
			u.Outcome, u.Reason = report.OutcomeCommitted, ""
		default:
			oe := &push.OutcomeError{Final: ev}
			u.Outcome, u.Reason = oe.Outcome(), oe.Reason()
		}
	}
	return []any{*u}, nil
}

// command records a command the ground saw on the drone's command topic,
// so its update's phases count from it.
func (d *drone) command(payload []byte, at time.Time, keep int) ([]any, error) {
	c, err := command.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if c.Drone != d.sum.ID {
		return nil, fmt.Errorf("command %s: for drone %q on drone %s's topic", c.ID, c.Drone, d.sum.ID)
	}
	if c.Kind == command.KindStatus {
		return nil, nil
	}
	u := d.update(c.ID, at, keep)
	u.Kind, u.Image = string(c.Kind), c.Image
	return []any{*u}, nil
}

// update returns the update of command key, started at at if new.
func (d *drone) update(key string, at time.Time, keep int) *Update {
	if u, ok := d.byCmd[key]; ok {
		return u
	}
	u := &Update{Type: TypeUpdate, Drone: d.sum.ID, Command: key, SentAt: MillisOf(at), Phases: []Phase{}, sent: at}
	d.byCmd[key] = u
	d.updates = append(d.updates, u)
	if len(d.updates) > keep {
		delete(d.byCmd, d.updates[0].Command)
		d.updates = d.updates[1:]
	}
	return u
}

func (d *drone) camera(payload []byte, at time.Time) ([]any, error) {
	if len(payload) < 4 || payload[0] != 0xFF || payload[1] != 0xD8 {
		return nil, errors.New("camera: not a JPEG (no start-of-image marker)")
	}
	d.cam.Seq++
	d.cam.At, d.cam.Bytes, d.cam.Meta, d.cam.Comment = MillisOf(at), len(payload), nil, ""
	if c, err := thermal.Comment(payload); err == nil {
		if len(c) > maxComment {
			c = c[:maxComment]
		}
		if json.Valid(c) {
			d.cam.Meta = json.RawMessage(slices.Clone(c))
		} else {
			d.cam.Comment = string(c)
		}
	}
	d.camTimes = append(d.camTimes, at)
	cut := 0
	for cut < len(d.camTimes) && at.Sub(d.camTimes[cut]) > fpsWindow {
		cut++
	}
	d.camTimes = d.camTimes[cut:]
	d.cam.FPS = 0
	if n := len(d.camTimes); n > 1 {
		d.cam.FPS = math.Round(float64(n-1)/d.camTimes[n-1].Sub(d.camTimes[0]).Seconds()*10) / 10
	}
	d.frame = payload
	return []any{d.cam}, nil
}

func (d *drone) snapshot() DroneSnapshot {
	s := DroneSnapshot{Drone: d.sum, Last: d.last, Markers: slices.Clone(d.markers), Updates: []Update{}, Problems: []Warning{}}
	s.Drone.Type = ""
	if s.Markers == nil {
		s.Markers = []Marker{}
	}
	h := &s.History
	*h = History{At: make([]Millis, 0, len(d.hist)), Alt: make([]Num, 0, len(d.hist)),
		Roll: make([]Num, 0, len(d.hist)), Pitch: make([]Num, 0, len(d.hist))}
	for i := range h.Motors {
		h.Motors[i] = make([]Num, 0, len(d.hist))
	}
	for _, x := range d.hist {
		h.At = append(h.At, MillisOf(x.at))
		h.Alt, h.Roll, h.Pitch = append(h.Alt, Num(x.alt)), append(h.Roll, Num(x.roll)), append(h.Pitch, Num(x.pitch))
		for i, m := range x.motors {
			h.Motors[i] = append(h.Motors[i], Num(m))
		}
	}
	for i := len(d.updates) - 1; i >= 0; i-- {
		s.Updates = append(s.Updates, *d.updates[i])
	}
	if d.cam.Seq > 0 {
		c := d.cam
		s.Camera = &c
	}
	for _, k := range slices.Sorted(maps.Keys(d.problems)) {
		s.Problems = append(s.Problems, *d.problems[k])
	}
	return s
}
