// Package chipstest runs drivers against the chip models without the
// simulator's socket: a Clock driven by hand, an i2c.Bus that routes
// transactions to models by address, and an spi.Port over an SPI model.
package chipstest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/skyswap/skyswap/hw/sim/chips"
)

// Clock is a chips.Clock driven by hand. The zero Clock reads 0. Safe for
// concurrent use.
type Clock struct{ t atomic.Int64 }

// Now is the chips.Clock.
func (c *Clock) Now() int64 { return c.t.Load() }

// Advance moves the time forward by d.
func (c *Clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// Set sets the time.
func (c *Clock) Set(t int64) { c.t.Store(t) }

// Bus is an i2c.Bus that routes each transaction to the model at its
// address; an address without a model NACKs (chips.ErrNACK).
type Bus struct {
	Devs map[uint16]chips.Device
}

var _ i2c.Bus = (*Bus)(nil)

// Tx implements i2c.Bus.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	d, ok := b.Devs[addr]
	if !ok {
		return fmt.Errorf("chipstest: address %#02x: %w", addr, chips.ErrNACK)
	}
	return d.Tx(w, r)
}

// SetSpeed implements i2c.Bus.
func (b *Bus) SetSpeed(physic.Frequency) error { return nil }

// String implements i2c.Bus.
func (b *Bus) String() string { return "chipstest-i2c" }

// MaxTxSize is what SPIPort's connections report through conn.Limits, as
// simbus and Linux's spidev do.
const MaxTxSize = 4096

// SPIPort is an spi.PortCloser over one SPI model. Its connections are full
// duplex, 8 bits per word, and report MaxTxSize.
type SPIPort struct {
	Dev chips.SPIDevice
	// OnTx, if set, is called with the number of bytes clocked before each
	// transaction reaches Dev; a test can advance a Clock by the time the
	// bytes take on the wire (see WireTime).
	OnTx func(n int)

	mu     sync.Mutex
	closed bool
}

var _ spi.PortCloser = (*SPIPort)(nil)

// ErrClosed is returned by a port or connection used after Close.
var ErrClosed = errors.New("chipstest: SPI port closed")

// WireTime is how long n bytes take on an SPI bus clocked at f.
func WireTime(n int, f physic.Frequency) time.Duration {
	hz := float64(f) / float64(physic.Hertz)
	return time.Duration(float64(8*n) / hz * float64(time.Second))
}

// String implements spi.Port.
func (p *SPIPort) String() string { return "chipstest-spi" }

// Close implements io.Closer.
func (p *SPIPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// LimitSpeed implements spi.PortCloser.
func (p *SPIPort) LimitSpeed(f physic.Frequency) error {
	if f <= 0 {
		return fmt.Errorf("chipstest: speed limit %v must be positive", f)
	}
	return nil
}

// Connect implements spi.Port: modes 0 to 3 at 8 bits per word.
func (p *SPIPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	if mode&^spi.Mode3 != 0 || bits != 8 || f < 0 {
		return nil, fmt.Errorf("chipstest: Connect(%v, %v, %d): only Mode0..3 at 8 bits", f, mode, bits)
	}
	return &spiConn{p: p}, nil
}

type spiConn struct{ p *SPIPort }

var (
	_ spi.Conn    = (*spiConn)(nil)
	_ conn.Limits = (*spiConn)(nil)
)

func (c *spiConn) String() string      { return "chipstest-spi" }
func (c *spiConn) Duplex() conn.Duplex { return conn.Full }
func (c *spiConn) MaxTxSize() int      { return MaxTxSize }

// Tx implements conn.Conn.
func (c *spiConn) Tx(w, r []byte) error {
	n := max(len(w), len(r))
	switch {
	case len(w) != 0 && len(r) != 0 && len(w) != len(r):
		return fmt.Errorf("chipstest: Tx with %d bytes out and %d in", len(w), len(r))
	case n == 0 || n > MaxTxSize:
		return fmt.Errorf("chipstest: Tx of %d bytes (want 1..%d)", n, MaxTxSize)
	}
	c.p.mu.Lock()
	closed := c.p.closed
	c.p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if c.p.OnTx != nil {
		c.p.OnTx(n)
	}
	return c.p.Dev.SPITx(w, r)
}

// TxPackets implements spi.Conn, one transaction per packet; KeepCS is not
// supported.
func (c *spiConn) TxPackets(ps []spi.Packet) error {
	for _, p := range ps {
		if p.KeepCS {
			return errors.New("chipstest: KeepCS is not supported")
		}
		if err := c.Tx(p.W, p.R); err != nil {
			return err
		}
	}
	return nil
}
