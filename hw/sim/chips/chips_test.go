package chips

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a Clock driven by hand.
type fakeClock struct{ t atomic.Int64 }

// Now is the Clock.
func (c *fakeClock) Now() int64 { return c.t.Load() }

// Advance moves the time forward.
func (c *fakeClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// newFakeClock returns a clock at 0 and its Clock.
func newFakeClock() (*fakeClock, Clock) {
	c := &fakeClock{}
	return c, c.Now
}

// realClock returns a Clock on the wall clock, for periph's drivers which
// sleep for real.
func realClock() Clock {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}

// mustTx runs a transaction that must succeed.
func mustTx(t *testing.T, d Device, w []byte, r []byte) {
	t.Helper()
	if err := d.Tx(w, r); err != nil {
		t.Fatalf("Tx(% x, %d) = %v", w, len(r), err)
	}
}

// readReg reads one register.
func readReg(t *testing.T, d Device, reg byte) byte {
	t.Helper()
	var b [1]byte
	mustTx(t, d, []byte{reg}, b[:])
	return b[0]
}

// nackCase is one transaction a chip must not acknowledge.
type nackCase struct {
	name string
	w    []byte
	r    int
}

// testNACK runs the cases against fresh chips from mk.
func testNACK(t *testing.T, mk func() Device, cases []nackCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mk().Tx(tc.w, make([]byte, tc.r))
			if !errors.Is(err, ErrNACK) {
				t.Fatalf("Tx(% x, %d) = %v, want an error wrapping ErrNACK", tc.w, tc.r, err)
			}
		})
	}
}

// fuzzTx splits data into transactions (a header byte: bits 2:0 the write
// length, bits 7:3 the read length; then the written bytes), runs them on d,
// calls after each time, and checks Tx never panics and only fails with
// ErrNACK.
func fuzzTx(t *testing.T, d Device, data []byte, after func()) {
	for len(data) > 0 {
		h := data[0]
		data = data[1:]
		n := min(int(h&7), len(data))
		w, r := data[:n], make([]byte, h>>3)
		data = data[n:]
		if err := d.Tx(w, r); err != nil && !errors.Is(err, ErrNACK) {
			t.Fatalf("Tx(% x, %d) = %v, not an ErrNACK", w, len(r), err)
		}
		after()
	}
}
