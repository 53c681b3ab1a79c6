package rollout

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/handoff/strategy"
)

// Spec is a rollout as an operator asks for it: dronectl rollout's flags
// and the ground's API body carry the same fields, in the same text forms.
// Its zero value is not valid (no image, no target); every zero optional
// field means the default documented on it.
type Spec struct {
	// Image is the release: NAME:TAG (pinned by the ground when the
	// rollout starts) or pinned by digest. Required.
	Image string `json:"image"`
	// App is the app it updates; "" means push.DefaultApp (flight).
	App string `json:"app,omitempty"`
	// Strategy is "" (the image's label decides) or a strategy.Strategy.
	Strategy string `json:"strategy,omitempty"`
	// Drones are the targets by id, in the order the waves take them.
	// Exclusive with All and Select.
	Drones []string `json:"drones,omitempty"`
	// All targets every drone the ground has a state of, in id order.
	All bool `json:"all,omitempty"`
	// Select targets the drones (of those the ground has a state of)
	// whose labels (report.State.Labels) hold every key=value of it, in
	// id order. nil selects nothing.
	Select Selector `json:"select,omitempty"`
	// Waves are the waves' cumulative sizes; nil means DefaultWaves.
	Waves Waves `json:"waves,omitempty"`
	// MaxFailed is how many failed drones a wave tolerates; the zero
	// value tolerates none.
	MaxFailed Threshold `json:"max_failed,omitzero"`
	// MinDone is how many of a wave's drones must have finished (done or
	// failed) before MaxFailed is judged as a percentage; a wave smaller
	// than that is judged when it ends. 0 means 1.
	MinDone int `json:"min_done,omitempty"`
	// Timeout is how long a drone that answered may take to its outcome
	// before it counts as failed; 0 means push.DefaultTimeout (5 min). At
	// least TTL.
	Timeout Duration `json:"timeout,omitzero"`
	// TTL is each command's lifetime, whole seconds up to
	// command.DefaultMaxLifetime: an offline drone gets its command when
	// it reconnects if before then, and counts as unreached after. 0
	// means push.DefaultTTL (2 min).
	TTL Duration `json:"ttl,omitzero"`
	// Soak is a wait between one wave's end and the next one's start; 0
	// means none.
	Soak Duration `json:"soak,omitzero"`
	// OnAbort is what follows a wave over MaxFailed: stop, or roll back
	// every drone the rollout updated. "" means stop.
	OnAbort OnAbort `json:"on_abort,omitempty"`
	// Parallel bounds how many drones have a command in flight at once;
	// 0 means a whole wave at once.
	Parallel int `json:"parallel,omitempty"`
}

// DefaultWaves are the waves of a Spec without any: one drone, then 10%,
// half, and the rest.
var DefaultWaves = Waves{{Count: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}

// SpecError is a Spec field that cannot work. Field is its JSON name
// (dronectl rollout's flag is the same with a dash: max_failed is
// -max-failed).
type SpecError struct {
	Field string
	Msg   string // what is wrong, and what to do
}

func (e *SpecError) Error() string { return "rollout: " + e.Field + ": " + e.Msg }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Check returns the first field of s that cannot work as a *SpecError,
// without the network: Image may still be a tag.
func (s Spec) Check() error {
	if s.Image == "" {
		return specErr("image", "missing: give the release, e.g. flight:v2")
	}
	if strings.Contains(s.Image, "@") {
		if err := command.CheckImage(s.Image); err != nil {
			return specErr("image", "%v", err)
		}
	}
	if s.Strategy != "" {
		if err := strategy.Check(s.Strategy); err != nil {
			return specErr("strategy", "%v, or leave it empty for the image's label", err)
		}
	}
	if err := s.checkTargets(); err != nil {
		return err
	}
	if err := s.waves().check(); err != nil {
		return err
	}
	return s.checkLimits()
}

func (s Spec) checkTargets() error {
	switch {
	case len(s.Drones) > 0 && (s.All || s.Select != nil):
		return specErr("drones", "give drone ids, or all, or a label selector: not several")
	case len(s.Drones) == 0 && !s.All && s.Select == nil:
		return specErr("drones", "no target: give drone ids (d1,d2), all, or select by label (site=field-a)")
	}
	seen := map[string]bool{}
	for _, d := range s.Drones {
		if err := broker.CheckDrone(d); err != nil {
			return specErr("drones", "%v", err)
		}
		if seen[d] {
			return specErr("drones", "%s is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

func (s Spec) checkLimits() error {
	if s.MinDone < 0 {
		return specErr("min_done", "%d is negative", s.MinDone)
	}
	if s.Parallel < 0 {
		return specErr("parallel", "%d is negative: give a number of drones, or 0 for a whole wave at once", s.Parallel)
	}
	if ttl := s.ttl(); ttl < time.Second || ttl%time.Second != 0 || ttl > command.DefaultMaxLifetime {
		return specErr("ttl", "%s must be whole seconds between 1s and %s (drones refuse longer lifetimes)", ttl, command.DefaultMaxLifetime)
	}
	if s.timeout() < s.ttl() {
		return specErr("timeout", "%s is shorter than the commands' ttl %s: a drone could start after the rollout gave up on it", s.timeout(), s.ttl())
	}
	if s.Soak < 0 {
		return specErr("soak", "%s is negative", time.Duration(s.Soak))
	}
	switch s.OnAbort {
	case "", Stop, Rollback:
	default:
		return specErr("on_abort", "%q: give stop or rollback", s.OnAbort)
	}
	return s.MaxFailed.check()
}

func (s Spec) app() string {
	if s.App == "" {
		return push.DefaultApp
	}
	return s.App
}

func (s Spec) waves() Waves {
	if s.Waves == nil {
		return DefaultWaves
	}
	return s.Waves
}

func (s Spec) ttl() time.Duration {
	if s.TTL == 0 {
		return push.DefaultTTL
	}
	return time.Duration(s.TTL)
}

func (s Spec) timeout() time.Duration {
	if s.Timeout == 0 {
		return push.DefaultTimeout
	}
	return time.Duration(s.Timeout)
}

func (s Spec) minDone() int { return max(s.MinDone, 1) }

// matches reports whether st is a target of the All or Select forms.
func (s Spec) matches(st report.State) bool {
	if s.All {
		return true
	}
	for k, v := range s.Select {
		if got, ok := st.Labels[k]; !ok || got != v {
			return false
		}
	}
	return s.Select != nil
}

// OnAbort is what a rollout does when a wave fails.
type OnAbort string

// What a rollout does on abort.
const (
	Stop     OnAbort = "stop"     // send nothing more; updated drones keep the new release
	Rollback OnAbort = "rollback" // roll back every drone the rollout updated
)

// Step is one wave's cumulative size: Count drones, or Percent of the
// targets (rounded up). Exactly one is set.
type Step struct {
	Count   int
	Percent float64
}

func (st Step) String() string {
	if st.Count > 0 {
		return strconv.Itoa(st.Count)
	}
	return strconv.FormatFloat(st.Percent, 'f', -1, 64) + "%"
}

// upTo is how many of n targets the waves up to this one cover.
func (st Step) upTo(n int) int {
	if st.Count > 0 {
		return min(st.Count, n)
	}
	return min(int(math.Ceil(st.Percent*float64(n)/100-1e-9)), n)
}

// Waves are a rollout's waves as cumulative sizes, in text
// "1,10%,50%,100%": wave k takes the targets up to its size that earlier
// waves did not. Sizes must grow, and the last must be 100% (or cover
// every target); a wave that would take no drone is skipped.
type Waves []Step

// ParseWaves reads Waves' text form.
func ParseWaves(s string) (Waves, error) {
	var w Waves
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		var st Step
		if p, ok := strings.CutSuffix(f, "%"); ok {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
				return nil, specErr("waves", "%q: a percentage is more than 0%% and at most 100%%", f)
			}
			st.Percent = v
		} else {
			v, err := strconv.Atoi(f)
			if err != nil || v <= 0 {
				return nil, specErr("waves", "%q: give a number of drones (1, 10) or a percentage of the targets (10%%)", f)
			}
			st.Count = v
		}
		w = append(w, st)
	}
	return w, w.check()
}

func (w Waves) check() error {
	if len(w) == 0 {
		return specErr("waves", "none: give cumulative sizes, e.g. 1,10%%,50%%,100%%")
	}
	for i := 1; i < len(w); i++ {
		a, b := w[i-1], w[i]
		if a.Count > 0 && b.Count > 0 && b.Count <= a.Count || a.Percent > 0 && b.Percent > 0 && b.Percent <= a.Percent {
			return specErr("waves", "%s after %s: sizes are cumulative and must grow (1,10%%,50%%,100%%)", b, a)
		}
	}
	if last := w[len(w)-1]; last.Percent != 100 {
		return specErr("waves", "the last wave is %s: end with 100%% so that every target is in a wave", last)
	}
	return nil
}

// split returns the waves' sizes for n targets, empty waves left out.
func (w Waves) split(n int) []int {
	var sizes []int
	done := 0
	for _, st := range w {
		if upTo := max(st.upTo(n), done); upTo > done {
			sizes = append(sizes, upTo-done)
			done = upTo
		}
	}
	return sizes
}

func (w Waves) String() string {
	parts := make([]string, len(w))
	for i, st := range w {
		parts[i] = st.String()
	}
	return strings.Join(parts, ",")
}

// MarshalText writes the text form.
func (w Waves) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads the text form (ParseWaves).
func (w *Waves) UnmarshalText(b []byte) error {
	v, err := ParseWaves(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// Threshold is how many failed drones a wave tolerates: a count ("3") or
// a percentage of its finished drones ("5%"). Its zero value tolerates
// none.
type Threshold struct {
	Count   int
	Percent float64
	IsPct   bool
}

// ParseThreshold reads Threshold's text form.
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		t := Threshold{Percent: v, IsPct: true}
		if err != nil {
			return t, specErr("max_failed", "%q: give a count (3) or a percentage (5%%)", s)
		}
		return t, t.check()
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return Threshold{}, specErr("max_failed", "%q: give a count (3) or a percentage (5%%)", s)
	}
	t := Threshold{Count: v}
	return t, t.check()
}

func (t Threshold) check() error {
	if t.Count < 0 || t.Percent < 0 || t.Percent >= 100 || math.IsNaN(t.Percent) {
		return specErr("max_failed", "%s: give a count from 0, or a percentage from 0%% to under 100%%", t)
	}
	return nil
}

// exceeded reports whether failed of executed drones is over t.
func (t Threshold) exceeded(failed, executed int) bool {
	if t.IsPct {
		return float64(failed)*100 > t.Percent*float64(executed)
	}
	return failed > t.Count
}

func (t Threshold) String() string {
	if t.IsPct {
		return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(t.Count)
}

// MarshalText writes the text form.
func (t Threshold) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads the text form (ParseThreshold).
func (t *Threshold) UnmarshalText(b []byte) error {
	v, err := ParseThreshold(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Selector picks drones by their labels, in text "key=value,key=value"
// (report.ParseLabels): a drone matches if its labels hold every pair.
type Selector map[string]string

// MarshalText writes the text form, keys sorted.
func (s Selector) MarshalText() ([]byte, error) { return []byte(report.FormatLabels(s)), nil }

// UnmarshalText reads the text form; "" is no selector (nil).
func (s *Selector) UnmarshalText(b []byte) error {
	v, err := report.ParseLabels(string(b))
	if err != nil {
		return specErr("select", "%v", err)
	}
	*s = v
	return nil
}

// Duration is a time.Duration in text form ("90s", "5m").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the text form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the text form.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return errors.New("give a duration like 90s or 5m")
	}
	*d = Duration(v)
	return nil
}

// targets returns the spec's targets among the drones whose states the
// ground has (by id), in rollout order.
func (s Spec) targets(states map[string]report.State) []string {
	if len(s.Drones) > 0 {
		return slices.Clone(s.Drones)
	}
	var out []string
	for id, st := range states {
		if s.matches(st) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
