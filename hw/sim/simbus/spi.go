package simbus

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// SPIMaxTxSize is the most bytes one SPI transaction may clock, reported
// through conn.Limits: the default buffer of Linux's spidev, so a driver that
// works here works on a Pi with its default settings.
const SPIMaxTxSize = 4096

// ErrPortClosed is returned by an SPI port or connection used after Close.
var ErrPortClosed = errors.New("simbus: SPI port closed")

// SPIPort returns chip select dev of the virtual drone's SPI bus as a periph
// spi.Port on this connection (the virtual drone's camera is on dev 0).
//
// Its transactions share the connection with the I2C ones, one at a time in
// the order they are made, and the drone answers an SPI transaction only
// after the time its bytes take on the wire (about 1.6 ms for 4 KB at
// 20 MHz). A process whose control loop uses this connection for I2C should
// therefore read SPI through a connection of its own, dialled under the
// same name so that the referee attributes the reads to the same instance.
//
// Closing the port ends its use (Connect and Tx fail with ErrPortClosed);
// it does not close c, which stays the application's to close.
func (c *Conn) SPIPort(dev uint8) spi.PortCloser {
	return &spiPort{c: c, dev: dev}
}

type spiPort struct {
	c   *Conn
	dev uint8

	mu        sync.Mutex
	connected bool
	closed    bool
	limit     physic.Frequency // 0 = none
}

var _ spi.PortCloser = (*spiPort)(nil)

func (p *spiPort) String() string { return fmt.Sprintf("%s/spi%d", p.c, p.dev) }

// Close implements io.Closer.
func (p *spiPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// LimitSpeed implements spi.PortCloser. The virtual bus keeps the lower of
// the limit and the speed asked by Connect for the connection's String; the
// drone paces transfers at its own clock (20 MHz).
func (p *spiPort) LimitSpeed(f physic.Frequency) error {
	if f <= 0 {
		return fmt.Errorf("simbus: SPI speed limit %v must be positive", f)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit = f
	return nil
}

// Connect implements spi.Port. It takes 8 bits per word and modes 0 to 3;
// half duplex, no chip select and LSB first are refused, since no device on
// the virtual drone uses them. As periph asks, a port connects once.
func (p *spiPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, ErrPortClosed
	case p.connected:
		return nil, fmt.Errorf("simbus: %s: Connect was already called", p)
	case f < 0:
		return nil, fmt.Errorf("simbus: %s: negative speed %v", p, f)
	case mode&^spi.Mode3 != 0:
		return nil, fmt.Errorf("simbus: %s: mode %v is not supported (only Mode0..Mode3)", p, mode)
	case bits != 8:
		return nil, fmt.Errorf("simbus: %s: %d bits per word is not supported (only 8)", p, bits)
	}
	if p.limit != 0 && (f == 0 || p.limit < f) {
		f = p.limit
	}
	p.connected = true
	return &spiConn{p: p, f: f, mode: mode}, nil
}

// spiConn is a connected SPI device on the virtual bus.
type spiConn struct {
	p    *spiPort
	f    physic.Frequency
	mode spi.Mode
}

var (
	_ spi.Conn    = (*spiConn)(nil)
	_ conn.Limits = (*spiConn)(nil)
)

func (s *spiConn) String() string { return fmt.Sprintf("%s@%s/%s", s.p, s.f, s.mode) }

// Duplex implements conn.Conn: SPI on the virtual bus is full duplex.
func (s *spiConn) Duplex() conn.Duplex { return conn.Full }

// MaxTxSize implements conn.Limits.
func (s *spiConn) MaxTxSize() int { return SPIMaxTxSize }

// Tx implements conn.Conn: one transaction. As on periph's spidev, w and r
// have the same length when both are given; either may be empty.
func (s *spiConn) Tx(w, r []byte) error {
	if len(w) != 0 && len(r) != 0 && len(w) != len(r) {
		return fmt.Errorf("simbus: %s: full duplex Tx with %d bytes out and %d in; give both the same length", s, len(w), len(r))
	}
	return s.tx(w, r)
}

func (s *spiConn) tx(w, r []byte) error {
	n := max(len(w), len(r))
	switch {
	case n == 0:
		return fmt.Errorf("simbus: %s: Tx of nothing", s)
	case n > SPIMaxTxSize:
		return fmt.Errorf("simbus: %s: Tx of %d bytes exceeds MaxTxSize %d", s, n, SPIMaxTxSize)
	}
	s.p.mu.Lock()
	closed := s.p.closed
	s.p.mu.Unlock()
	if closed {
		return ErrPortClosed
	}
	return s.p.c.spi(s.p.dev, w, r)
}

// TxPackets implements spi.Conn. Packets joined by KeepCS make one
// transaction; each packet lasts max(len(W), len(R)) bytes. BitsPerWord
// must be 0 or 8, and the last packet may not keep the chip select
// asserted: the virtual bus has no transaction that outlives a call.
func (s *spiConn) TxPackets(ps []spi.Packet) error {
	if len(ps) > 0 && ps[len(ps)-1].KeepCS {
		return fmt.Errorf("simbus: %s: the last packet keeps CS asserted; the virtual bus cannot leave a transaction open", s)
	}
	for start := 0; start < len(ps); {
		end := start
		for ps[end].KeepCS {
			end++
		}
		if err := s.txGroup(ps[start : end+1]); err != nil {
			return err
		}
		start = end + 1
	}
	return nil
}

// txGroup runs packets as one transaction.
func (s *spiConn) txGroup(ps []spi.Packet) error {
	var n int
	var hasW, hasR bool
	for i, p := range ps {
		if p.BitsPerWord != 0 && p.BitsPerWord != 8 {
			return fmt.Errorf("simbus: %s: packet %d: %d bits per word is not supported (only 8)", s, i, p.BitsPerWord)
		}
		if len(p.W) != 0 && len(p.R) != 0 && len(p.W) != len(p.R) {
			return fmt.Errorf("simbus: %s: packet %d has %d bytes out and %d in; give both the same length", s, i, len(p.W), len(p.R))
		}
		n += max(len(p.W), len(p.R))
		hasW = hasW || len(p.W) > 0
		hasR = hasR || len(p.R) > 0
	}
	if len(ps) == 1 {
		return s.tx(ps[0].W, ps[0].R)
	}
	var w, r []byte
	if hasW {
		w = make([]byte, 0, n)
	}
	if hasR {
		r = make([]byte, n)
	}
	for _, p := range ps {
		m := max(len(p.W), len(p.R))
		if hasW {
			w = append(w, p.W...)
			w = append(w, make([]byte, m-len(p.W))...)
		}
	}
	if err := s.tx(w, r); err != nil {
		return err
	}
	off := 0
	for _, p := range ps {
		if hasR {
			copy(p.R, r[off:])
		}
		off += max(len(p.W), len(p.R))
	}
	return nil
}

// spi runs one SPI transaction on chip select dev.
func (c *Conn) spi(dev uint8, w, r []byte) error {
	if 1+1+2+len(w)+2 > MaxFrame || 1+len(r) > MaxFrame {
		return fmt.Errorf("%w: simbus: SPI transaction of %d+%d bytes is too large for one frame", ErrNACK, len(w), len(r))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = appendSPI(c.out[:0], dev, w, len(r))
	payload, err := c.roundTrip(r)
	if err != nil {
		return fmt.Errorf("simbus: spi%d: %w", dev, err)
	}
	copy(r, payload)
	return nil
}
