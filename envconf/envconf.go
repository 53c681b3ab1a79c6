// Package envconf reads settings from the environment (12-factor) and
// collects every malformed one into a single error whose lines each name
// the setting and say what it wants. Unset settings leave the destination
// alone, so callers pre-fill defaults or apply them after.
package envconf

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Reader reads settings through Getenv (os.Getenv in production).
type Reader struct {
	Getenv func(string) string
	errs   []error
}

// New returns a Reader over getenv.
func New(getenv func(string) string) *Reader { return &Reader{Getenv: getenv} }

func (r *Reader) get(key string) string { return strings.TrimSpace(r.Getenv(key)) }

// Fail records a problem with a setting.
func (r *Reader) Fail(format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf(format, args...))
}

// Err returns every problem recorded, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// String reads key into dst if set.
func (r *Reader) String(key string, dst *string) {
	if v := r.get(key); v != "" {
		*dst = v
	}
}

// Required reads key into dst; unset is recorded with hint (what to set).
func (r *Reader) Required(key string, dst *string, hint string) {
	if v := r.get(key); v != "" {
		*dst = v
		return
	}
	r.Fail("%s is not set: %s", key, hint)
}

// OneOf reads key into dst if set and one of allowed.
func (r *Reader) OneOf(key string, dst *string, allowed ...string) {
	v := r.get(key)
	if v == "" {
		return
	}
	if !slices.Contains(allowed, v) {
		r.Fail("%s=%q: want %s", key, v, strings.Join(allowed, ", "))
		return
	}
	*dst = v
}

// Float reads key into dst if set and within [lo, hi].
func (r *Reader) Float(key string, dst *float64, lo, hi float64) {
	v := r.get(key)
	if v == "" {
		return
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi {
		r.Fail("%s=%q: want a number from %v to %v", key, v, lo, hi)
		return
	}
	*dst = f
}

// Int reads key into dst if set and within [lo, hi].
func (r *Reader) Int(key string, dst *int64, lo, hi int64) {
	v := r.get(key)
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		r.Fail("%s=%q: want an integer from %d to %d", key, v, lo, hi)
		return
	}
	*dst = n
}

// Bool reads key into dst if set: 1/true/yes or 0/false/no.
func (r *Reader) Bool(key string, dst *bool) {
	switch v := strings.ToLower(r.get(key)); v {
	case "":
	case "1", "true", "yes":
		*dst = true
	case "0", "false", "no":
		*dst = false
	default:
		r.Fail("%s=%q: want 1 or 0", key, v)
	}
}
