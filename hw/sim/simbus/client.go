package simbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"periph.io/x/conn/v3/physic"

	"golang.org/x/sys/unix"

	"github.com/skyswap/skyswap/hw/lease"
)

// Conn is a client connection to the virtual drone's bus. It implements
// lease.Bus: drivers use it as a periph i2c.Bus. Safe for concurrent use;
// transactions are serialised, as on a real bus.
type Conn struct {
	c     fdConn
	path  string
	name  string
	epoch atomic.Uint64

	mu   sync.Mutex
	out  []byte
	in   []byte
	dead error
}

var _ lease.Bus = (*Conn)(nil)

// Dial connects to the virtual drone's socket at path and identifies the
// client as name (its writer identity in the referee's log).
func Dial(ctx context.Context, path, name string) (*Conn, error) {
	if name == "" || len(name) > 64 {
		return nil, fmt.Errorf("simbus: client name %q must be 1..64 bytes", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A blocking socket: see fdConn. Connecting to a unix socket does not
	// wait on the peer, so ctx is only checked up front.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("simbus: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("simbus: dial %s: %w (is drone-sim running?)", path, err)
	}
	conn := &Conn{c: fdConn{fd}, path: path, name: name}
	conn.out = appendHello(conn.out[:0], name)
	if _, err := conn.roundTrip(nil); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("simbus: hello to %s: %w", path, err)
	}
	return conn, nil
}

// Tx implements i2c.Bus.
func (c *Conn) Tx(addr uint16, w, r []byte) error {
	if 1+2+8+2+len(w)+2 > MaxFrame || 1+len(r) > MaxFrame {
		return fmt.Errorf("%w: simbus: transaction of %d+%d bytes is too large for one frame", ErrNACK, len(w), len(r))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = appendTx(c.out[:0], addr, c.epoch.Load(), w, len(r))
	payload, err := c.roundTrip(r)
	if err != nil {
		return fmt.Errorf("simbus: tx to %#02x: %w", addr, err)
	}
	copy(r, payload)
	return nil
}

// Beat implements lease.Reader: the motor controller's lease as the
// virtual drone keeps it.
func (c *Conn) Beat() (lease.Beat, error) { return c.leaseOp(0) }

// Release implements lease.Bus.
func (c *Conn) Release(epoch uint64) error {
	if epoch == 0 {
		return fmt.Errorf("simbus: release of epoch 0: it holds no lease")
	}
	_, err := c.leaseOp(epoch)
	return err
}

func (c *Conn) leaseOp(release uint64) (lease.Beat, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = appendLease(c.out[:0], release)
	var r [beatSize]byte
	p, err := c.roundTrip(r[:])
	if err != nil {
		return lease.Beat{}, fmt.Errorf("simbus: lease: %w", err)
	}
	return parseBeat(p), nil
}

// roundTrip sends c.out and reads the response, which stays valid until
// the next call. Callers hold c.mu (Dial needs no lock: c is not shared yet).
func (c *Conn) roundTrip(r []byte) ([]byte, error) {
	if c.dead != nil {
		return nil, c.dead
	}
	if _, err := c.c.Write(c.out); err != nil {
		return nil, c.fail(err)
	}
	status, payload, grown, err := readFrame(c.c, c.in)
	c.in = grown
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("drone-sim closed the connection: %w", err)
		}
		return nil, c.fail(err)
	}
	switch status {
	case statusOK:
		if len(payload) != len(r) {
			return nil, c.fail(fmt.Errorf("response of %d bytes for a %d-byte read", len(payload), len(r)))
		}
		return payload, nil
	case statusStale:
		return nil, fmt.Errorf("%w (%s)", lease.ErrStale, payload)
	case statusHeld:
		return nil, fmt.Errorf("%w (%s)", lease.ErrHeld, payload)
	case statusNACK:
		return nil, fmt.Errorf("%w: %s", ErrNACK, payload)
	default:
		return nil, fmt.Errorf("%w: drone-sim refused the request: %s", ErrNACK, payload)
	}
}

func (c *Conn) fail(err error) error {
	c.dead = fmt.Errorf("connection to %s lost: %w", c.path, err)
	c.c.shutdown()
	return c.dead
}

// SetEpoch implements lease.Bus.
func (c *Conn) SetEpoch(epoch uint64) { c.epoch.Store(epoch) }

// SetSpeed implements i2c.Bus; the virtual bus has no clock to set.
func (c *Conn) SetSpeed(physic.Frequency) error { return nil }

// String implements i2c.Bus.
func (c *Conn) String() string { return "sim:" + c.path + "#" + c.name }

// Close implements i2c.BusCloser.
func (c *Conn) Close() error {
	c.c.shutdown()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == nil {
		c.dead = fmt.Errorf("connection to %s is closed", c.path)
	}
	if c.c.fd < 0 {
		return nil
	}
	err := unix.Close(c.c.fd)
	c.c.fd = -1
	return err
}
