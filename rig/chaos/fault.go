package chaos

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The kinds of fault; the package doc says what each does.
const (
	SigStop Kind = "sigstop"
	SigKill Kind = "sigkill"
	Hog     Kind = "hog"
	Latency Kind = "latency"
	I2C     Kind = "i2c"
)

var kinds = []Kind{SigStop, SigKill, Hog, Latency, I2C}

// Fault is one scheduled fault, as a -fault flag gives it
// (kind=sigstop,for=300ms,every=10s). The zero value of each optional
// field means the default noted beside it.
type Fault struct {
	Kind Kind
	// For is how long each firing lasts; required for every kind but
	// sigkill, which has none.
	For   time.Duration
	After time.Duration // before the first firing; 0 = at once
	// Every is the period from one firing's start to the next's; it must
	// be longer than For. 0 = fire once.
	Every time.Duration
	// Count stops after that many firings; 0 = 1 without Every, else
	// until Run is stopped.
	Count int
	Delay time.Duration // latency: how long the traffic is held (required)
	CPUs  int           // hog: busy-looping processes; 0 = 1
	Rate  float64       // i2c: share of the transactions that fail, in (0, 1]; 0 = 1
	Addr  uint16        // i2c: the 7-bit device address; 0 = every address
}

// String is the fault as a -fault flag value, keys in a fixed order.
func (f Fault) String() string {
	kv := []string{"kind=" + string(f.Kind)}
	add := func(k string, ok bool, v string) {
		if ok {
			kv = append(kv, k+"="+v)
		}
	}
	add("for", f.For > 0, f.For.String())
	add("after", f.After > 0, f.After.String())
	add("every", f.Every > 0, f.Every.String())
	add("count", f.Count > 0, strconv.Itoa(f.Count))
	add("delay", f.Delay > 0, f.Delay.String())
	add("cpus", f.CPUs > 0, strconv.Itoa(f.CPUs))
	add("rate", f.Rate > 0, strconv.FormatFloat(f.Rate, 'g', -1, 64))
	add("addr", f.Addr > 0, "0x"+strconv.FormatUint(uint64(f.Addr), 16))
	return strings.Join(kv, ",")
}

// keys says which keys each kind takes besides kind, after, every and
// count.
var keys = map[Kind][]string{
	SigStop: {"for"},
	SigKill: {},
	Hog:     {"for", "cpus"},
	Latency: {"for", "delay"},
	I2C:     {"for", "rate", "addr"},
}

// ParseFault reads a fault from a -fault flag value: comma-separated
// key=value pairs, kind first or anywhere. Its errors say what to write
// instead.
func ParseFault(s string) (Fault, error) {
	var f Fault
	kv := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || k == "" || v == "" {
			return f, fmt.Errorf("%q: want key=value pairs separated by commas, such as kind=sigstop,for=300ms,every=10s", p)
		}
		if _, dup := kv[k]; dup {
			return f, fmt.Errorf("%s= is given twice: give it once", k)
		}
		kv[k] = v
	}
	f.Kind = Kind(kv["kind"])
	if !slices.Contains(kinds, f.Kind) {
		return f, fmt.Errorf("kind=%s: write one of kind=%s", kv["kind"], joinKinds("|"))
	}
	allowed := append([]string{"kind", "after", "every", "count"}, keys[f.Kind]...)
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if !slices.Contains(allowed, k) {
			return f, fmt.Errorf("%s= does not apply to kind=%s: its keys are %s", k, f.Kind, strings.Join(allowed, ", "))
		}
	}
	var err error
	durations := []struct {
		key string
		dst *time.Duration
	}{{"for", &f.For}, {"after", &f.After}, {"every", &f.Every}, {"delay", &f.Delay}}
	for _, d := range durations {
		if v, ok := kv[d.key]; ok {
			if *d.dst, err = parseDuration(d.key, v); err != nil {
				return f, err
			}
		}
	}
	if v, ok := kv["count"]; ok {
		if f.Count, err = strconv.Atoi(v); err != nil || f.Count < 1 {
			return f, fmt.Errorf("count=%s: write a whole number of firings, such as count=3", v)
		}
	}
	if v, ok := kv["cpus"]; ok {
		if f.CPUs, err = strconv.Atoi(v); err != nil || f.CPUs < 1 || f.CPUs > 64 {
			return f, fmt.Errorf("cpus=%s: write how many busy processes, 1 to 64, such as cpus=1", v)
		}
	}
	if v, ok := kv["rate"]; ok {
		if f.Rate, err = strconv.ParseFloat(v, 64); err != nil || f.Rate <= 0 || f.Rate > 1 {
			return f, fmt.Errorf("rate=%s: write the share of transactions that fail, in (0, 1], such as rate=0.2", v)
		}
	}
	if v, ok := kv["addr"]; ok {
		a, err := strconv.ParseUint(v, 0, 16)
		if err != nil || a == 0 || a > 0x7f {
			return f, fmt.Errorf("addr=%s: write a 7-bit I2C address, such as addr=0x68 (the IMU), or leave it out for every address", v)
		}
		f.Addr = uint16(a)
	}
	return f, f.check()
}

// check validates what the keys say together.
func (f Fault) check() error {
	switch {
	case f.Kind != SigKill && f.For <= 0:
		return fmt.Errorf("kind=%s needs for=: how long it lasts, such as for=300ms", f.Kind)
	case f.Kind == Latency && f.Delay <= 0:
		return errors.New("kind=latency needs delay=: how long the traffic is held, such as delay=600ms")
	case f.Every > 0 && f.Every <= f.For:
		return fmt.Errorf("every=%v is not longer than for=%v: a fault must end before it fires again; write every=%v or more", f.Every, f.For, 2*f.For)
	case f.Count > 1 && f.Every == 0:
		return fmt.Errorf("count=%d without every=: give the period between firings, such as every=10s", f.Count)
	}
	return nil
}

func parseDuration(key, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		if _, nerr := strconv.ParseFloat(v, 64); nerr == nil {
			return 0, fmt.Errorf("%s=%s: a duration needs a unit: write %s=%sms or %s=%ss", key, v, key, v, key, v)
		}
		return 0, fmt.Errorf("%s=%s: write a duration such as %s=300ms or %s=10s", key, v, key, key)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s=%s: a duration here cannot be negative", key, v)
	}
	return d, nil
}

func joinKinds(sep string) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, sep)
}

// firings is how many times f fires: 0 = until stopped.
func (f Fault) firings() int {
	if f.Every == 0 {
		return 1
	}
	return f.Count
}

// Selector chooses containers by their labels: a container is selected
// when it carries every label of the selector with the same value.
type Selector map[string]string

// ParseSelector reads a -select flag value: comma-separated label=value
// pairs, such as io.skyswap.app=flight,io.skyswap.version=v2.
func ParseSelector(s string) (Selector, error) {
	const example = "such as -select io.skyswap.app=flight,io.skyswap.version=v2"
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("name the containers to hurt by their labels, %s", example)
	}
	sel := Selector{}
	for _, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want label=value pairs separated by commas, %s", p, example)
		}
		if _, dup := sel[k]; dup {
			return nil, fmt.Errorf("label %s is given twice: give it once", k)
		}
		sel[k] = v
	}
	return sel, nil
}

// Match reports whether labels carry every label of s.
func (s Selector) Match(labels map[string]string) bool {
	for k, v := range s {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// String is s as a -select flag value, labels sorted.
func (s Selector) String() string {
	kv := make([]string, 0, len(s))
	for _, k := range slices.Sorted(maps.Keys(s)) {
		kv = append(kv, k+"="+s[k])
	}
	return strings.Join(kv, ",")
}
