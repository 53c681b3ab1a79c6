package sim

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// fakeClock is a hand-driven CLOCK_MONOTONIC.
type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64              { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t += int64(d) }

func TestBusFaults(t *testing.T) {
	type tx struct {
		after  time.Duration // clock advance before it
		client string
		addr   uint16
		fails  bool
	}
	for _, tc := range []struct {
		name   string
		bursts []I2CBurst
		end    string // a client whose burst is ended before the transactions; "-" = none
		txs    []tx
	}{
		{"no burst", nil, "-", []tx{{0, "v1", 0x68, false}, {0, "v2", 0x40, false}}},
		{"one client, one address", []I2CBurst{{For: time.Second, Client: "v2", Addr: 0x68}}, "-", []tx{
			{0, "v2", 0x68, true}, {0, "v2", 0x76, false}, {0, "v1", 0x68, false},
		}},
		{"every client, every address", []I2CBurst{{For: time.Second}}, "-", []tx{
			{0, "v1", 0x68, true}, {0, "v2", 0x40, true},
		}},
		{"over after For", []I2CBurst{{For: time.Second, Client: "v2"}}, "-", []tx{
			{999 * time.Millisecond, "v2", 0x68, true}, {time.Millisecond, "v2", 0x68, false},
		}},
		{"ended early", []I2CBurst{{For: time.Hour, Client: "v2"}}, "v2", []tx{{0, "v2", 0x68, false}}},
		{"the client's burst decides first", []I2CBurst{{For: time.Second}, {For: time.Second, Client: "v2", Addr: 0x40}}, "-", []tx{
			{0, "v2", 0x40, true}, {0, "v2", 0x68, true}, {0, "v1", 0x68, true},
		}},
		{"a burst replaces the client's last", []I2CBurst{{For: time.Second, Client: "v2", Addr: 0x40}, {For: time.Second, Client: "v2", Addr: 0x68}}, "-", []tx{
			{0, "v2", 0x40, false}, {0, "v2", 0x68, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: 1e9}
			b := newBusFaults(clk.now)
			for _, f := range tc.bursts {
				if _, err := b.start(f); err != nil {
					t.Fatal(err)
				}
			}
			if tc.end != "-" {
				b.end(tc.end, false)
			}
			var want uint64
			for i, x := range tc.txs {
				clk.advance(x.after)
				err := b.fail(x.client, x.addr)
				if (err != nil) != x.fails || (err != nil && !errors.Is(err, simbus.ErrNACK)) {
					t.Errorf("tx %d (%s at %#x): err %v, want failure %v as simbus.ErrNACK", i, x.client, x.addr, err, x.fails)
				}
				if x.fails {
					want++
				}
			}
			if r := b.report(); r.Failed != want {
				t.Errorf("report %+v, want %d failed", r, want)
			}
		})
	}
}

// TestBusFaultRate: the share of transactions failed is the rate (the
// draws are seeded, so this is exact from run to run).
func TestBusFaultRate(t *testing.T) {
	clk := &fakeClock{t: 1}
	b := newBusFaults(clk.now)
	if _, err := b.start(I2CBurst{For: time.Second, Addr: 0x68, Rate: 0.2}); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	failed := 0
	for range n {
		if b.fail("v1", 0x68) != nil {
			failed++
		}
	}
	if share := float64(failed) / n; share < 0.18 || share > 0.22 {
		t.Fatalf("%d of %d failed (%.3f), want about 0.2", failed, n, share)
	}
	r := b.report()
	if r.ByClient["v1"] != uint64(failed) || r.ByAddr["0x68"] != uint64(failed) || len(r.Active) != 1 || r.Active[0].Addr != "0x68" {
		t.Fatalf("report %+v, want %d failed by v1 at 0x68 and the burst active", r, failed)
	}
	clk.advance(time.Second)
	if r := b.report(); len(r.Active) != 0 || b.until.Load() != 0 {
		t.Fatalf("after its time: active %+v, until %d; want none", r.Active, b.until.Load())
	}
}

func TestParseI2CBurst(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  I2CBurst
		err   string // part of the error; "" = none
	}{
		{"for=200ms&rate=0.2&addr=0x68&client=flight-v2", I2CBurst{For: 200 * time.Millisecond, Rate: 0.2, Addr: 0x68, Client: "flight-v2"}, ""},
		{"for=1s", I2CBurst{For: time.Second}, ""},
		{"for=1s&addr=104", I2CBurst{For: time.Second, Addr: 0x68}, ""},
		{"", I2CBurst{}, "for=200ms"},
		{"for=-1s", I2CBurst{}, "for=200ms"},
		{"for=1s&rate=0", I2CBurst{}, "rate=0.2"},
		{"for=1s&rate=1.5", I2CBurst{}, "rate=0.2"},
		{"for=1s&addr=0x80", I2CBurst{}, "addr=0x68"},
		{"for=1s&addr=imu", I2CBurst{}, "addr=0x68"},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseI2CBurst(q)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v, %v; want %+v", tc.query, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one suggesting %q", tc.query, err, tc.err)
		}
	}
}
