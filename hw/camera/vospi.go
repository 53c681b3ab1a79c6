package camera

import (
	"context"
	"fmt"
	"time"

	"github.com/skyswap/skyswap/hw/mono"
)

// Next blocks until the next new frame and copies it into f, allocating
// f.Pix only if it is not Width*Height long (reuse f to read without
// allocating). Duplicates are skipped and counted; a packet with a bad CRC
// or an unexpected number is dropped and counted, the partial frame
// discarded and the stream resynchronised (package doc). ctx ends the wait:
// Next checks it before every transfer and during pauses, so it returns
// within one transfer (~2 ms at 20 MHz) of cancellation. On error f is
// unchanged. After a transfer error Next resynchronises on its next call.
func (c *Camera) Next(ctx context.Context, f *Frame) error {
	c.progress = mono.Now()
	if c.pos < c.end && mono.Since(c.readAt) > stale {
		// Packets buffered before a pause (this reader stopped, another
		// read on) are history: drop them and hunt for a frame start.
		c.hunt()
	}
	for {
		if c.pos == c.end {
			if err := c.fill(ctx); err != nil {
				switch {
				case ctx.Err() != nil:
					// Called off (ownership moved): whoever reads next
					// hunts for a frame start. Nothing is wrong with the
					// stream, so no error, no pause.
					c.hunt()
				case c.next != 0:
					// Leaving mid-frame loses the camera's sync.
					c.resync()
				}
				return err
			}
			continue
		}
		p := c.buf[c.pos : c.pos+PacketSize]
		c.pos += PacketSize
		if !c.packet(p) {
			continue
		}
		c.progress = c.readAt
		if c.hasLast && c.count-c.lastCnt < 3 && *c.cur == *c.last {
			c.st.dups.Add(1)
			continue
		}
		c.cur, c.last = c.last, c.cur
		c.lastCnt, c.hasLast = c.count, true
		if len(f.Pix) != Width*Height {
			f.Pix = make([]uint16, Width*Height)
		}
		copy(f.Pix, c.last[:])
		f.Count, f.Uptime, f.T = c.count, c.uptime, c.readAt
		c.st.frames.Add(1)
		return nil
	}
}

// fill runs the pauses that are due and reads one transfer into buf.
func (c *Camera) fill(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if mono.Since(c.progress) > c.o.SyncTimeout && !c.resyncDue {
		c.resync()
	}
	switch {
	case c.resyncDue:
		if err := c.sleep(ctx, c.o.ResyncPause); err != nil {
			return err
		}
		c.resyncDue, c.idleDue = false, false
		c.progress = mono.Now()
	case c.idleDue:
		if err := c.sleep(ctx, c.o.IdlePause); err != nil {
			return err
		}
		c.idleDue = false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	err := c.sc.Tx(nil, c.buf)
	c.mu.Unlock()
	c.readAt = mono.Now()
	if err != nil {
		c.resync()
		return fmt.Errorf("camera: read VoSPI: %w", err)
	}
	c.pos, c.end = 0, len(c.buf)
	if c.next == 0 {
		idle := true
		for i := 0; i < len(c.buf) && idle; i += PacketSize {
			idle = c.buf[i]&0x0F == 0x0F
		}
		c.idleDue = idle && c.o.IdlePause > 0
	}
	return nil
}

// packet takes one packet and reports whether it completed a frame in cur.
func (c *Camera) packet(p []byte) bool {
	if p[0]&0x0F == 0x0F {
		c.st.discards.Add(1)
		return false
	}
	if crc16(p) != uint16(p[2])<<8|uint16(p[3]) {
		c.st.crc.Add(1)
		c.resync()
		return false
	}
	n := int(p[0]&0x0F)<<8 | int(p[1])
	if n != c.next {
		if c.hunting {
			c.st.skipped.Add(1)
			return false
		}
		c.st.seq.Add(1)
		c.resync()
		return false
	}
	c.hunting = false
	payload := p[4:]
	switch {
	case n == 0:
		// Telemetry line A (Lepton IDD, telemetry row A): 32-bit values are
		// two big-endian words, least significant word first.
		c.uptime = time.Duration(word32(payload, 1)) * time.Millisecond
		c.count = word32(payload, 20)
	case n >= TelemetryLines:
		row := c.cur[(n-TelemetryLines)*Width : (n-TelemetryLines+1)*Width]
		for x := range row {
			row[x] = (uint16(payload[2*x])<<8 | uint16(payload[2*x+1])) & 0x3FFF
		}
	}
	c.next++
	if c.next < PacketsPerFrame {
		return false
	}
	c.next = 0
	return true
}

// stale is how old buffered packets may be when Next is called: more than a
// frame period (37 ms) means the stream moved on without this reader.
const stale = 40 * time.Millisecond

// hunt drops the partial frame and what is buffered and looks for the next
// frame start, without counting an error or pausing.
func (c *Camera) hunt() {
	c.pos = c.end
	c.next = 0
	c.hunting = true
}

// resync drops the partial frame and what is buffered, and makes the next
// transfer wait ResyncPause and then hunt for a frame start.
func (c *Camera) resync() {
	c.st.resyncs.Add(1)
	c.pos = c.end
	c.next = 0
	c.hunting = true
	c.resyncDue = true
}

func (c *Camera) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	c.timer.Reset(d)
	select {
	case <-ctx.Done():
		c.timer.Stop()
		return ctx.Err()
	case <-c.timer.C:
		return nil
	}
}

func word32(b []byte, w int) uint32 {
	lo := uint32(b[2*w])<<8 | uint32(b[2*w+1])
	hi := uint32(b[2*w+2])<<8 | uint32(b[2*w+3])
	return hi<<16 | lo
}

// crc16 is the VoSPI packet CRC: CRC-16/CCITT (x^16+x^12+x^5+1, initial 0,
// not reflected) over the whole packet with the ID's four reserved bits and
// the CRC field taken as zero.
//
// periph's lepton clears the ID's low nibble of the first byte instead
// (&^= 0x0F); for the Lepton 2.5's packet numbers 0..62 both bits are zero,
// so the two agree on every packet this reader accepts.
func crc16(p []byte) uint16 {
	crc := crcTable[p[0]&0x0F]
	crc = crcTable[byte(crc>>8)^p[1]] ^ crc<<8
	crc = crcTable[byte(crc>>8)] ^ crc<<8
	crc = crcTable[byte(crc>>8)] ^ crc<<8
	for _, v := range p[4:] {
		crc = crcTable[byte(crc>>8)^v] ^ crc<<8
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()
