// Package netdelay holds a byte stream back for a delay that may change
// while it runs: the "slow link" fault shared by the rig's DelayProxy and
// skyswap-chaos's NATS relay. It is a test tool; nothing in the product
// uses it.
package netdelay

import (
	"errors"
	"io"
	"time"
)

// poll bounds how long a held chunk goes without looking at the delay
// again, so that lowering the delay releases it within this time.
const poll = 10 * time.Millisecond

// chunk is what one read from the source returned, and when.
type chunk struct {
	at time.Time
	b  []byte
}

// Copy copies src to dst until src ends or a write to dst fails. Each
// chunk read from src is held until delay() has passed since it was read;
// delay is asked again at least every 10 ms while a chunk waits, so
// lowering it releases what waits and raising it holds back what has not
// left yet. Bytes leave in the order they came. A zero delay forwards at
// once.
//
// Copy returns nil when src ends with io.EOF, else the first read or
// write error. After a write error the bytes still to come from src are
// discarded until src ends: close src to end it sooner.
func Copy(dst io.Writer, src io.Reader, delay func() time.Duration) error {
	q := make(chan chunk, 1024)
	readErr := make(chan error, 1)
	go func() {
		defer close(q)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now(), append([]byte(nil), buf[:n]...)}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr <- err
				return
			}
		}
	}()
	var werr error
	for c := range q {
		if werr != nil {
			continue // drain: the reader must not block on a full queue
		}
		for {
			wait := time.Until(c.at.Add(delay()))
			if wait <= 0 {
				break
			}
			time.Sleep(min(wait, poll))
		}
		_, werr = dst.Write(c.b)
	}
	if werr != nil {
		return werr
	}
	return <-readErr
}
