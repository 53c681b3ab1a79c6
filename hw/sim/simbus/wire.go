// Package simbus carries I2C and SPI transactions between drivers and the
// virtual drone over a unix socket. The client side is a periph i2c.Bus
// (plus the lease epoch) and, per chip select, a periph spi.Port, so drivers
// run unchanged against the simulator; the server side hands each
// transaction, tagged with the client's identity (and, for I2C, its epoch),
// to a Handler (the virtual drone), and SPI transactions to the Handler's
// SPIHandler if it has one.
//
// Wire format (all integers big-endian), one request then one response:
//
//	request:  u32 n | u8 op | payload (n-1 bytes)
//	  op 1 hello: client name (UTF-8, at most 64 bytes)
//	  op 2 tx:    u16 addr | u64 epoch | u16 wlen | w | u16 rlen
//	  op 3 spi:   u8 dev | u16 wlen | w | u16 rlen
//	  op 4 lease: u64 release (0 = only read the lease)
//	response: u32 n | u8 status | payload (n-1 bytes)
//	  status 0 ok:    the rlen bytes read (tx, spi), nothing (hello), or for
//	                  lease the heartbeat after the release: u64 highest |
//	                  u64 epoch | i64 t | u64 writes | u64 released
//	                  (lease.Beat's fields in order)
//	  status 1 nack:  error text (the target did not acknowledge; for spi,
//	                  no device answers on that chip select)
//	  status 2 stale: error text (the fence refused the epoch)
//	  status 3 bad:   error text (the request was malformed)
//	  status 4 held:  error text (the fence refused a newer epoch: the
//	                  holder is alive, lease.ErrHeld)
//
// An spi request is one SPI transaction, one assertion of chip select dev,
// full duplex: max(wlen, rlen) bytes are clocked; w is what the master
// clocks out (MOSI, zeros past its end; empty for a read-only transfer) and
// the response carries the first rlen bytes the device clocked back (MISO).
// wlen and rlen may not both be zero. SPI carries no epoch: the fence guards
// the actuators, which are all on I2C.
//
// A lease request reads the motor controller's lease (lease.Beat) and,
// with a non-zero release, first records that the holder of that epoch
// handed over; it moves no bytes on any bus.
//
// A connection must say hello before its first tx, spi or lease. Frames are at
// most MaxFrame bytes; a larger length prefix closes the connection.
package simbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/skyswap/skyswap/hw/lease"
)

// MaxFrame is the largest frame either side accepts, length prefix excluded.
// It holds an SPI transfer of SPIMaxTxSize bytes each way with room to
// spare.
const MaxFrame = 8 << 10

const (
	opHello byte = 1
	opTx    byte = 2
	opSPI   byte = 3
	opLease byte = 4
)

const (
	statusOK    byte = 0
	statusNACK  byte = 1
	statusStale byte = 2
	statusBad   byte = 3
	statusHeld  byte = 4
)

// ErrNACK is the class of errors for a transaction the target did not
// acknowledge: no device at the address, an unknown register, a malformed
// request; for SPI, no device on the chip select or one that cannot answer.
var ErrNACK = errors.New("i2c: NACK")

// errBadFrame is a length prefix out of range: the stream cannot be trusted
// past it, so the connection is closed.
var errBadFrame = errors.New("simbus: bad frame")

// errEOF is the peer closing the socket.
var errEOF = io.EOF

func appendHello(b []byte, name string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(name)))
	b = append(b, opHello)
	return append(b, name...)
}

func appendTx(b []byte, addr uint16, epoch uint64, w []byte, rlen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+2+8+2+len(w)+2))
	b = append(b, opTx)
	b = binary.BigEndian.AppendUint16(b, addr)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
	b = append(b, w...)
	return binary.BigEndian.AppendUint16(b, uint16(rlen))
}

func appendSPI(b []byte, dev uint8, w []byte, rlen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+1+2+len(w)+2))
	b = append(b, opSPI, dev)
	b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
	b = append(b, w...)
	return binary.BigEndian.AppendUint16(b, uint16(rlen))
}

func appendLease(b []byte, release uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, 1+8)
	b = append(b, opLease)
	return binary.BigEndian.AppendUint64(b, release)
}

// beatSize is the payload of a lease response.
const beatSize = 5 * 8

func appendBeat(b []byte, beat lease.Beat) []byte {
	b = binary.BigEndian.AppendUint64(b, beat.Highest)
	b = binary.BigEndian.AppendUint64(b, beat.Epoch)
	b = binary.BigEndian.AppendUint64(b, uint64(beat.T))
	b = binary.BigEndian.AppendUint64(b, beat.Writes)
	return binary.BigEndian.AppendUint64(b, beat.Released)
}

func parseBeat(p []byte) lease.Beat {
	u := func(i int) uint64 { return binary.BigEndian.Uint64(p[8*i:]) }
	return lease.Beat{Highest: u(0), Epoch: u(1), T: int64(u(2)), Writes: u(3), Released: u(4)}
}

func parseLease(p []byte) (release uint64, err error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("lease payload of %d bytes, want 8", len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

func appendResponse(b []byte, status byte, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(payload)))
	b = append(b, status)
	return append(b, payload...)
}

// readFrame reads one length-prefixed frame into buf (grown if needed) and
// returns its kind byte and payload.
func readFrame(r io.Reader, buf []byte) (kind byte, payload, grown []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > MaxFrame {
		return 0, nil, buf, fmt.Errorf("%w: frame of %d bytes (want 1..%d)", errBadFrame, n, MaxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, buf, err
	}
	return buf[0], buf[1:], buf, nil
}

// txRequest is a decoded tx payload.
type txRequest struct {
	addr  uint16
	epoch uint64
	w     []byte
	rlen  int
}

func parseTx(p []byte) (txRequest, error) {
	if len(p) < 2+8+2 {
		return txRequest{}, fmt.Errorf("tx payload of %d bytes is shorter than its header", len(p))
	}
	req := txRequest{
		addr:  binary.BigEndian.Uint16(p[0:2]),
		epoch: binary.BigEndian.Uint64(p[2:10]),
	}
	var err error
	if req.w, req.rlen, err = parseXfer("tx", "writes and reads nothing", p[10:]); err != nil {
		return txRequest{}, err
	}
	return req, nil
}

// parseXfer decodes the tail both transfers share, u16 wlen | w | u16
// rlen; op names the request and nothing says what an empty one does.
func parseXfer(op, nothing string, p []byte) (w []byte, rlen int, err error) {
	wlen := int(binary.BigEndian.Uint16(p[0:2]))
	p = p[2:]
	if len(p) != wlen+2 {
		return nil, 0, fmt.Errorf("%s declares %d write bytes but carries %d", op, wlen, len(p)-2)
	}
	rlen = int(binary.BigEndian.Uint16(p[wlen:]))
	if rlen > MaxFrame-1 {
		return nil, 0, fmt.Errorf("%s asks to read %d bytes (at most %d)", op, rlen, MaxFrame-1)
	}
	if wlen == 0 && rlen == 0 {
		return nil, 0, errors.New(op + " " + nothing)
	}
	return p[:wlen], rlen, nil
}

// spiRequest is a decoded spi payload.
type spiRequest struct {
	dev  uint8
	w    []byte
	rlen int
}

func parseSPI(p []byte) (spiRequest, error) {
	if len(p) < 1+2 {
		return spiRequest{}, fmt.Errorf("spi payload of %d bytes is shorter than its header", len(p))
	}
	req := spiRequest{dev: p[0]}
	var err error
	if req.w, req.rlen, err = parseXfer("spi", "clocks nothing", p[1:]); err != nil {
		return spiRequest{}, err
	}
	return req, nil
}
