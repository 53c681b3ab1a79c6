package rollout

import (
	"errors"
	"fmt"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
)

// run is one rollout in memory: its record and the index from its
// commands to its drones. It does no I/O: the Manager feeds it events and
// the clock, and sends what step returns.
type run struct {
	rec   *Record
	cmds  map[string]ref // command id -> drone and kind
	dirty bool           // changed since it was last written
}

// ref is a command of the rollout: its drone's index and its kind.
type ref struct {
	drone int
	kind  string
}

// order is a command for the Manager to sign and send.
type order struct {
	ref
	cmd command.Command // unsigned
}

func newRun(rec *Record) *run {
	r := &run{rec: rec, cmds: make(map[string]ref, len(rec.Drones))}
	for i, d := range rec.Drones {
		r.cmds[CommandID(rec.ID, kindUpdate, d.ID)] = ref{i, kindUpdate}
		r.cmds[CommandID(rec.ID, kindRollback, d.ID)] = ref{i, kindRollback}
	}
	return r
}

// newRecord plans a rollout of spec (Image pinned) over targets.
func newRecord(id string, spec Spec, targets []string, now time.Time) *Record {
	rec := &Record{ID: id, Spec: spec, State: Running, Created: now}
	i := 0
	for w, size := range spec.waves().split(len(targets)) {
		rec.Waves = append(rec.Waves, Wave{Size: size})
		for _, d := range targets[i : i+size] {
			rec.Drones = append(rec.Drones, Drone{ID: d, Wave: w, Update: Cmd{Status: Pending}})
		}
		i += size
	}
	return rec
}

// cmd returns drone i's command of kind; nil for a rollback not made.
func (r *run) cmd(x ref) *Cmd {
	d := &r.rec.Drones[x.drone]
	if x.kind == kindUpdate {
		return &d.Update
	}
	return d.Rollback
}

// step advances the rollout at now and returns the commands to send.
// With judge, a drone that fell silent is judged (unreached, or failed
// past the timeout); the Manager holds it back until it has heard what
// the broker kept for it. states are the drones' newest states.
func (r *run) step(now time.Time, judge bool, states map[string]report.State) []order {
	rec := r.rec
	if !rec.State.Live() {
		return nil
	}
	if judge {
		r.expire(now)
	}
	if rec.State == Running || rec.State == Paused {
		if reason := r.overThreshold(); reason != "" {
			r.set(Aborting, reason)
		}
	}
	switch rec.State {
	case Running:
		return r.advance(now, states)
	case Aborting:
		return r.unwind(now)
	case Canceling:
		if !r.inFlight(kindUpdate) && !r.inFlight(kindRollback) {
			r.end(Canceled, now)
		}
	}
	return nil
}

func (r *run) set(s State, reason string) {
	r.rec.State, r.rec.Reason, r.dirty = s, reason, true
}

func (r *run) end(s State, now time.Time) {
	r.rec.State, r.rec.Ended, r.dirty = s, now, true
}

// advance runs the waves: the current one's pending drones are sent, an
// ended one soaks, then the next starts.
func (r *run) advance(now time.Time, states map[string]report.State) []order {
	rec := r.rec
	for {
		w := &rec.Waves[rec.Wave]
		if w.Started.IsZero() {
			w.Started, r.dirty = now, true
		}
		if c := rec.Counts(rec.Wave); c.Pending > 0 || c.InProgress > 0 {
			return r.send(now, states, c.InProgress)
		}
		if w.Ended.IsZero() {
			w.Ended, r.dirty = now, true
		}
		if rec.Wave == len(rec.Waves)-1 {
			r.end(Completed, now)
			return nil
		}
		if soak := time.Duration(rec.Spec.Soak); soak > 0 {
			if w.SoakUntil.IsZero() {
				w.SoakUntil, r.dirty = now.Add(soak), true
			}
			if now.Before(w.SoakUntil) {
				return nil
			}
		}
		rec.Wave++
		r.dirty = true
	}
}

// send returns the current wave's pending updates, as many as Parallel
// allows with inFlight already out. A drone whose state shows the
// release committed is skipped.
func (r *run) send(now time.Time, states map[string]report.State, inFlight int) []order {
	rec := r.rec
	limit := len(rec.Drones)
	if rec.Spec.Parallel > 0 {
		limit = rec.Spec.Parallel - inFlight
	}
	app := rec.Spec.app()
	var out []order
	for i := range rec.Drones {
		d := &rec.Drones[i]
		if len(out) >= limit {
			break
		}
		if d.Wave != rec.Wave || d.Update.Status != Pending {
			continue
		}
		st := states[d.ID]
		if st.Committed[app] == rec.Spec.Image {
			d.Update = Cmd{Status: Skipped, Outcome: "already running it", Ended: now}
			r.dirty = true
			continue
		}
		d.Previous = st.Committed[app]
		out = append(out, r.order(ref{i, kindUpdate}))
	}
	return out
}

// order returns the unsigned command x is: the rollout's image, or for a
// rollback the drone's previous release.
func (r *run) order(x ref) order {
	rec := r.rec
	d := &rec.Drones[x.drone]
	c := command.Command{ID: CommandID(rec.ID, x.kind, d.ID), Kind: command.KindUpdate, Drone: d.ID,
		App: rec.Spec.app(), Image: rec.Spec.Image, Strategy: rec.Spec.Strategy}
	if x.kind == kindRollback {
		c.Kind, c.Image = command.KindRollback, d.Previous
	}
	return order{x, c}
}

// unwind waits for the updates in flight, then rolls back every drone the
// rollout updated (on_abort rollback) and waits for those.
func (r *run) unwind(now time.Time) []order {
	rec := r.rec
	if r.inFlight(kindUpdate) {
		return nil
	}
	if rec.Spec.OnAbort != Rollback {
		r.end(Aborted, now)
		return nil
	}
	var out []order
	for i := range rec.Drones {
		d := &rec.Drones[i]
		if d.Update.Status != Done || d.Rollback != nil {
			continue
		}
		d.Rollback = &Cmd{Status: Pending}
		out = append(out, r.order(ref{i, kindRollback}))
	}
	if len(out) == 0 && !r.inFlight(kindRollback) {
		r.end(RolledBk, now)
	}
	return out
}

// sent records that o went out as c at now.
func (r *run) sent(o order, c command.Command, now time.Time) {
	x := r.cmd(o.ref)
	*x = Cmd{ID: c.ID, Status: Sent, Sent: now, Expires: c.Expires}
	r.dirty = true
}

// published records that the broker acknowledged command id at now.
func (r *run) published(id string, now time.Time) {
	x, ok := r.cmds[id]
	if c := r.cmd(x); ok && c != nil && c.ID == id && c.Published.IsZero() {
		c.Published, r.dirty = now, true
	}
}

// unpublished returns the commands recorded as sent before since (by a
// ground that was stopped before it published them) that are still
// unpublished, unanswered and valid at now: the Manager publishes them
// again. A drone that did get one before the ground died answered it (the
// ground heard that when it settled) or refuses the copy as a replay.
func (r *run) unpublished(since, now time.Time) []ref {
	if !r.rec.State.Live() {
		return nil
	}
	var out []ref
	for i := range r.rec.Drones {
		for _, x := range []ref{{i, kindUpdate}, {i, kindRollback}} {
			c := r.cmd(x)
			if c != nil && c.Status == Sent && c.Published.IsZero() && c.Sent.Before(since) && now.Before(c.Expires) {
				out = append(out, x)
			}
		}
	}
	return out
}

// unsent puts o back: it was not recorded, so it was not sent.
func (r *run) unsent(o order) {
	if o.kind == kindRollback {
		r.rec.Drones[o.drone].Rollback = nil
	} else {
		r.rec.Drones[o.drone].Update = Cmd{Status: Pending}
	}
}

// inFlight reports whether a command of kind is sent and not ended.
func (r *run) inFlight(kind string) bool {
	for i := range r.rec.Drones {
		if x := r.cmd(ref{i, kind}); x != nil && x.Status.inFlight() {
			return true
		}
	}
	return false
}

// expire judges the drones that fell silent: no answer by the command's
// expiry (and the drone clock's allowed skew) is unreached; an answer but
// no outcome within the timeout is failed.
func (r *run) expire(now time.Time) {
	timeout := r.rec.Spec.timeout()
	for i := range r.rec.Drones {
		for _, kind := range []string{kindUpdate, kindRollback} {
			x := r.cmd(ref{i, kind})
			switch {
			case x == nil:
			case x.Status == Sent && now.After(x.Expires.Add(command.DefaultMaxSkew)):
				x.Status, x.Ended, r.dirty = Unreached, now, true
				x.Error = "no answer before the command expired at " + x.Expires.UTC().Format(time.RFC3339) + ": the drone was out of reach"
			case x.Status == Working && now.After(x.Sent.Add(timeout)):
				x.Status, x.Ended, x.Outcome, r.dirty = Failed, now, "timeout", true
				x.Error = fmt.Sprintf("no outcome within %s (the last phase was %s): the drone may still be working on it", timeout, x.Phase)
			}
		}
	}
}

// overThreshold returns why the current wave's failures are over
// max_failed, or "" if they are not (or not judged yet: fewer than
// min_done of its drones finished and some are still to).
func (r *run) overThreshold() string {
	rec := r.rec
	c := rec.Counts(rec.Wave)
	executed := c.Done + c.Failed
	complete := c.Pending == 0 && c.InProgress == 0
	if executed == 0 || executed < rec.Spec.minDone() && !complete || !rec.Spec.MaxFailed.exceeded(c.Failed, executed) {
		return ""
	}
	return fmt.Sprintf("wave %d: %d of %d drones that finished failed, over max_failed %s", rec.Wave+1, c.Failed, executed, rec.Spec.MaxFailed)
}

// event applies ev, an event of command x of the rollout, received at
// now. It reports false for an event of a command that had ended.
func (r *run) event(x ref, ev report.Event, now time.Time) bool {
	c := r.cmd(x)
	if c == nil || !c.Status.inFlight() {
		r.rec.Ignored.Late++
		r.dirty = true
		return false
	}
	c.Phase, c.Status, r.dirty = ev.Phase, Working, true
	if !push.Ends(ev) {
		return true
	}
	c.Ended = now
	switch {
	case push.Succeeded(ev):
		c.Status, c.Outcome = Done, ev.Outcome
	case ev.Phase == report.PhaseRefused && !now.Before(c.Expires):
		c.Status, c.Error = Unreached, "the drone got the command after it expired: "+ev.Error
	default:
		oe := &push.OutcomeError{Final: ev}
		c.Status, c.Outcome, c.Error = Failed, oe.Outcome(), oe.Reason()
	}
	return true
}

// Errors of the operator's controls.
var (
	// ErrNotFound: no rollout has the id.
	ErrNotFound = errors.New("rollout: no such rollout")
	// ErrState: the rollout is not in a state the control applies to.
	ErrState = errors.New("rollout: not possible in this state")
)

// control applies an operator's pause, resume or cancel.
func (r *run) control(what string) error {
	rec := r.rec
	switch {
	case what == "pause" && rec.State == Running:
		r.set(Paused, "paused by the operator")
	case what == "resume" && rec.State == Paused:
		r.set(Running, "")
	case what == "cancel" && (rec.State == Running || rec.State == Paused || rec.State == Aborting):
		r.set(Canceling, "canceled by the operator")
	default:
		return fmt.Errorf("%w: rollout %s is %s: %s applies to %s", ErrState, rec.ID, rec.State, what, appliesTo[what])
	}
	return nil
}

var appliesTo = map[string]string{
	"pause":  "a running rollout",
	"resume": "a paused rollout",
	"cancel": "a running, paused or aborting rollout",
}
