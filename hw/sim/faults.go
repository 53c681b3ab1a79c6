package sim

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// I2CBurst is an I2C error burst: for For, each transaction of Client at
// Addr fails with probability Rate, as the real bus fails (the Pi's
// i2c-dev returns EIO or ENXIO; a simbus client gets simbus.ErrNACK). A
// failed transaction reaches no chip: a read returns nothing, a write
// changes nothing. The zero value of each optional field means the default
// noted beside it.
type I2CBurst struct {
	For time.Duration // how long the burst lasts (required, positive)
	// Client is the bus client's name (its hello: the flight app's
	// FLIGHT_INSTANCE); "" = every client. A burst replaces the one on
	// the same Client.
	Client string
	// Addr is the 7-bit address whose transactions fail; 0 = every
	// address (0 is the general call address, which no chip here answers).
	Addr uint16
	Rate float64 // share of the transactions that fail, in (0, 1]; 0 = 1, every one
}

// I2CFaults says what the bursts did: how many transactions they failed,
// by client and by address ("0x68"), since the drone started, and the
// bursts still on.
type I2CFaults struct {
	Failed   uint64            `json:"failed"`
	ByClient map[string]uint64 `json:"by_client"` // never nil
	ByAddr   map[string]uint64 `json:"by_addr"`   // never nil
	Active   []ActiveI2CBurst  `json:"active"`    // never nil; by client
}

// ActiveI2CBurst is a burst that is still on.
type ActiveI2CBurst struct {
	Client string  `json:"client"` // "" = every client
	Addr   string  `json:"addr"`   // "0x68", or "" for every address
	Rate   float64 `json:"rate"`
	Until  int64   `json:"until"` // CLOCK_MONOTONIC ns
}

type burst struct {
	until int64
	addr  uint16
	rate  float64
}

// busFaults holds the I2C bursts. The zero value is not usable; see
// newBusFaults.
type busFaults struct {
	now func() int64
	// until is the end of the latest burst, 0 when none is on: the one
	// load every transaction pays while no burst was ever set.
	until atomic.Int64

	mu       sync.Mutex
	bursts   map[string]burst // by client name
	rnd      *rand.Rand       // seeded: the draws of a run repeat
	failed   uint64
	byClient map[string]uint64
	byAddr   map[uint16]uint64
}

func newBusFaults(now func() int64) *busFaults {
	return &busFaults{now: now, bursts: map[string]burst{}, rnd: rand.New(rand.NewPCG(1, 2)),
		byClient: map[string]uint64{}, byAddr: map[uint16]uint64{}}
}

func (b *busFaults) start(f I2CBurst) (ActiveI2CBurst, error) {
	if f.For <= 0 {
		return ActiveI2CBurst{}, fmt.Errorf("sim: I2C burst for %v: give a positive duration, such as 200ms", f.For)
	}
	if f.Rate == 0 {
		f.Rate = 1
	}
	if f.Rate < 0 || f.Rate > 1 {
		return ActiveI2CBurst{}, fmt.Errorf("sim: I2C burst rate %v: give a share in (0, 1], such as 0.2", f.Rate)
	}
	if f.Addr > 0x7f {
		return ActiveI2CBurst{}, fmt.Errorf("sim: I2C burst address %#x: give a 7-bit address, such as 0x68", f.Addr)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.now() + int64(f.For)
	b.bursts[f.Client] = burst{until: u, addr: f.Addr, rate: f.Rate}
	b.until.Store(max(b.until.Load(), u))
	return active(f.Client, b.bursts[f.Client]), nil
}

// end ends client's burst, or every burst when all is set.
func (b *busFaults) end(client string, all bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if all {
		clear(b.bursts)
	} else {
		delete(b.bursts, client)
	}
	b.settle(b.now())
}

// settle drops the bursts that are over and recomputes until; b.mu held.
func (b *busFaults) settle(now int64) {
	var u int64
	for c, s := range b.bursts {
		if now >= s.until {
			delete(b.bursts, c)
			continue
		}
		u = max(u, s.until)
	}
	b.until.Store(u)
}

// fail returns the error a transaction of client at addr fails with, or
// nil. A burst on the client decides before one on every client.
func (b *busFaults) fail(client string, addr uint16) error {
	if b.until.Load() == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.settle(now)
	for _, key := range [2]string{client, ""} {
		s, ok := b.bursts[key]
		if !ok || (s.addr != 0 && s.addr != addr) {
			continue
		}
		if b.rnd.Float64() >= s.rate {
			return nil
		}
		b.failed++
		b.byClient[client]++
		b.byAddr[addr]++
		return fmt.Errorf("%w: I2C bus error at %#02x (an injected burst: EIO on a Pi)", simbus.ErrNACK, addr)
	}
	return nil
}

func (b *busFaults) report() I2CFaults {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle(b.now())
	r := I2CFaults{Failed: b.failed, ByClient: map[string]uint64{}, ByAddr: map[string]uint64{}, Active: []ActiveI2CBurst{}}
	for c, n := range b.byClient {
		r.ByClient[c] = n
	}
	for a, n := range b.byAddr {
		r.ByAddr[hexAddr(a)] = n
	}
	for c, s := range b.bursts {
		r.Active = append(r.Active, active(c, s))
	}
	sort.Slice(r.Active, func(i, j int) bool { return r.Active[i].Client < r.Active[j].Client })
	return r
}

func active(client string, s burst) ActiveI2CBurst {
	a := ActiveI2CBurst{Client: client, Rate: s.rate, Until: s.until}
	if s.addr != 0 {
		a.Addr = hexAddr(s.addr)
	}
	return a
}

func hexAddr(a uint16) string { return "0x" + strconv.FormatUint(uint64(a), 16) }

// StartI2CBurst starts an I2C error burst on the virtual bus (see
// I2CBurst) and returns it as it now runs.
func (d *Drone) StartI2CBurst(f I2CBurst) (ActiveI2CBurst, error) { return d.i2c.start(f) }

// EndI2CBurst ends the burst on client ("" = the one on every client)
// before its time; with all, it ends every burst.
func (d *Drone) EndI2CBurst(client string, all bool) { d.i2c.end(client, all) }

// I2CFaults reports what the bursts did so far.
func (d *Drone) I2CFaults() I2CFaults { return d.i2c.report() }

// parseI2CBurst reads a burst from POST /faults/i2c's query.
func parseI2CBurst(q url.Values) (I2CBurst, error) {
	var f I2CBurst
	d, err := time.ParseDuration(q.Get("for"))
	if err != nil || d <= 0 {
		return f, fmt.Errorf("for=%q: give how long the burst lasts, such as for=200ms", q.Get("for"))
	}
	f.For, f.Client = d, q.Get("client")
	if s := q.Get("rate"); s != "" {
		if f.Rate, err = strconv.ParseFloat(s, 64); err != nil || f.Rate <= 0 || f.Rate > 1 {
			return f, fmt.Errorf("rate=%q: give the share of transactions that fail, in (0, 1], such as rate=0.2", s)
		}
	}
	if s := q.Get("addr"); s != "" {
		a, err := strconv.ParseUint(s, 0, 16)
		if err != nil || a == 0 || a > 0x7f {
			return f, fmt.Errorf("addr=%q: give a 7-bit device address, such as addr=0x68 (the IMU), or leave it out for every address", s)
		}
		f.Addr = uint16(a)
	}
	return f, nil
}
