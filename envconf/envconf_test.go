package envconf

import (
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	env := map[string]string{
		"S": " text ", "F": "2.5", "FBAD": "x", "FHIGH": "50", "I": "7", "IBAD": "7.5",
		"B1": "true", "B0": "0", "BBAD": "maybe", "O": "land", "OBAD": "crash",
	}
	r := New(func(k string) string { return env[k] })
	var (
		s, req, o, obad  = "default", "", "", ""
		f, fbad, fhigh   = 1.0, 1.0, 1.0
		i, ibad          = int64(1), int64(1)
		b1, b0, bbad, bu = false, true, false, true
	)
	r.String("S", &s)
	r.String("UNSET", &s)
	r.Required("MISSING", &req, "set it to something")
	r.Float("F", &f, 0, 10)
	r.Float("FBAD", &fbad, 0, 10)
	r.Float("FHIGH", &fhigh, 0, 10)
	r.Int("I", &i, 0, 10)
	r.Int("IBAD", &ibad, 0, 10)
	r.Bool("B1", &b1)
	r.Bool("B0", &b0)
	r.Bool("BBAD", &bbad)
	r.Bool("UNSET", &bu)
	r.OneOf("O", &o, "land", "exit")
	r.OneOf("OBAD", &obad, "land", "exit")
	if s != "text" || f != 2.5 || i != 7 || !b1 || b0 || !bu || o != "land" {
		t.Fatalf("values: s=%q f=%v i=%v b1=%v b0=%v bu=%v o=%q", s, f, i, b1, b0, bu, o)
	}
	if fbad != 1 || fhigh != 1 || ibad != 1 || obad != "" {
		t.Fatalf("bad values were stored: %v %v %v %q", fbad, fhigh, ibad, obad)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"MISSING", "FBAD", "FHIGH", "IBAD", "BBAD", "OBAD"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 6 {
		t.Errorf("%d problems reported, want 6:\n%v", n, err)
	}
}
