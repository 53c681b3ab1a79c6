package simbus

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
)

// Client identifies a connected bus client to the Handler.
type Client struct {
	// ID is unique per connection for the server's lifetime, from 1.
	ID uint64
	// Name is what the client said in its hello (its writer identity).
	Name string
}

// Handler performs transactions for the server. Tx must fill r on success.
// An error wrapping lease.ErrStale or lease.ErrHeld is reported as a fence
// refusal of that class; any other error as a NACK.
type Handler interface {
	Tx(c Client, addr uint16, epoch uint64, w, r []byte) error
}

// SPIHandler is implemented by a Handler whose drone also has an SPI bus.
// SPI performs one transaction, one assertion of chip select dev, full
// duplex: max(len(w), len(r)) bytes are clocked, w is what the master
// clocked out (it sends zeros past the end of w; w is empty for a read-only
// transfer) and SPI must fill r with the first len(r) bytes the device
// clocked back. An error is reported to the client as a NACK: no device on
// that chip select, or one that cannot answer. Without an SPIHandler every
// spi request is answered that way.
type SPIHandler interface {
	SPI(c Client, dev uint8, w, r []byte) error
}

// LeaseHandler is implemented by a Handler whose drone keeps a write
// lease (the motor controller's fence). Lease records, if release is not
// zero, that the holder of epoch release handed over, then returns the
// lease's heartbeat. Without a LeaseHandler every lease request is refused
// as a NACK.
type LeaseHandler interface {
	Lease(c Client, release uint64) (lease.Beat, error)
}

// Server serves a Handler on a listener.
type Server struct {
	h      Handler
	log    *slog.Logger
	nextID atomic.Uint64

	// Malformed counts requests refused as malformed.
	Malformed atomic.Uint64

	// RTPriority, if positive, runs each connection's thread under
	// SCHED_FIFO at this priority (best effort): the chips answer as fast
	// as hardware would even when the machine is busy.
	RTPriority int
}

// NewServer returns a server for h. A nil logger discards logs.
func NewServer(h Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, log: log}
}

// Serve accepts connections on ln until ctx is done or ln fails, serving
// each on its own OS thread with blocking reads (see fdConn). It closes ln
// and every connection on return.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[fdConn]struct{}{}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.shutdown()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		uc, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// File dups the socket; Fd puts the dup in blocking mode.
		f, err := uc.File()
		uc.Close()
		if err != nil {
			s.log.Warn("simbus: cannot take over connection", "err", err)
			continue
		}
		c := fdConn{int(f.Fd())}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if s.RTPriority > 0 {
				if err := mono.RealTime(s.RTPriority); err != nil {
					s.log.Debug("simbus: connection thread keeps normal priority", "err", err)
				}
			}
			s.serveConn(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			f.Close()
		}()
	}
}

func (s *Server) serveConn(c fdConn) {
	var (
		client Client
		buf    []byte
		out    []byte
		rbuf   []byte
	)
	for {
		kind, p, grown, err := readFrame(c, buf)
		buf = grown
		if err != nil {
			if errors.Is(err, errBadFrame) {
				s.Malformed.Add(1)
				c.Write(appendResponse(out[:0], statusBad, []byte(err.Error())))
			}
			return
		}
		var status byte
		var payload []byte
		switch {
		case kind == opHello:
			if client.ID != 0 || len(p) == 0 || len(p) > 64 || !utf8.Valid(p) {
				status, payload = statusBad, []byte("hello must come once, first, with a 1..64 byte UTF-8 name")
				s.Malformed.Add(1)
				break
			}
			client = Client{ID: s.nextID.Add(1), Name: string(p)}
			s.log.Info("simbus: client connected", "client", client.Name, "id", client.ID)
		case (kind == opTx || kind == opSPI || kind == opLease) && client.ID == 0:
			status, payload = statusBad, []byte("say hello before the first tx, spi or lease")
			s.Malformed.Add(1)
		case kind == opTx:
			req, err := parseTx(p)
			if err != nil {
				status, payload = statusBad, []byte(err.Error())
				s.Malformed.Add(1)
				break
			}
			r := zeroed(&rbuf, req.rlen)
			switch err := s.h.Tx(client, req.addr, req.epoch, req.w, r); {
			case err == nil:
				payload = r
			case errors.Is(err, lease.ErrStale):
				status, payload = statusStale, []byte(err.Error())
			case errors.Is(err, lease.ErrHeld):
				status, payload = statusHeld, []byte(err.Error())
			default:
				status, payload = statusNACK, []byte(err.Error())
			}
		case kind == opSPI:
			req, err := parseSPI(p)
			if err != nil {
				status, payload = statusBad, []byte(err.Error())
				s.Malformed.Add(1)
				break
			}
			r := zeroed(&rbuf, req.rlen)
			sh, ok := s.h.(SPIHandler)
			if !ok {
				status, payload = statusNACK, []byte("this drone has no SPI bus")
				break
			}
			if err := sh.SPI(client, req.dev, req.w, r); err != nil {
				status, payload = statusNACK, []byte(err.Error())
				break
			}
			payload = r
		case kind == opLease:
			status, payload = s.lease(client, p, &rbuf)
		default:
			status, payload = statusBad, []byte("unknown op")
			s.Malformed.Add(1)
		}
		out = appendResponse(out[:0], status, payload)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (s *Server) lease(c Client, p []byte, buf *[]byte) (status byte, payload []byte) {
	release, err := parseLease(p)
	if err != nil {
		s.Malformed.Add(1)
		return statusBad, []byte(err.Error())
	}
	lh, ok := s.h.(LeaseHandler)
	if !ok {
		return statusNACK, []byte("this drone keeps no lease")
	}
	beat, err := lh.Lease(c, release)
	if err != nil {
		return statusNACK, []byte(err.Error())
	}
	*buf = appendBeat((*buf)[:0], beat)
	return statusOK, *buf
}

// zeroed returns n zero bytes of *buf, growing it first if needed: the
// read buffer a connection reuses from request to request.
func zeroed(buf *[]byte, n int) []byte {
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	r := (*buf)[:n]
	clear(r)
	return r
}
