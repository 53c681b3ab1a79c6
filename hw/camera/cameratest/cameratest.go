// Package cameratest builds VoSPI streams and serves them through fake SPI
// ports, for the camera's tests and for anything that must speak the
// Lepton's video protocol (an emulator, a recording).
//
// The encoder is written apart from the camera's decoder (its CRC is the
// bitwise definition, the decoder's is table-driven), so that a test that
// encodes with one and decodes with the other checks both against the
// datasheet rather than against each other's mistakes.
package cameratest

import (
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/skyswap/skyswap/hw/camera"
)

// CRC is the VoSPI CRC of data: CRC-16/CCITT, polynomial x^16+x^12+x^5+1,
// initial value 0, not reflected (CRC-16/XMODEM; "123456789" gives 0x31C3).
// For a packet, pass it with the ID's top nibble and the CRC field zeroed;
// AppendPacket does.
func CRC(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// PeriphCRCOK reports whether packet p passes periph's lepton check
// (verifyCRC): the CRC over p with the first byte's low nibble and the CRC
// field cleared. It agrees with the datasheet's (top nibble) for packet
// numbers below 256, which is every packet of a Lepton 2.
func PeriphCRCOK(p []byte) bool {
	tmp := append([]byte(nil), p...)
	tmp[0] &^= 0x0F
	tmp[2], tmp[3] = 0, 0
	return CRC(tmp) == uint16(p[2])<<8|uint16(p[3])
}

// AppendPacket appends one video packet: the 16-bit id (packet number in the
// low 12 bits; the top 4 are reserved and sent as given), its CRC, and
// payload, zero-padded to 160 bytes.
func AppendPacket(dst []byte, id uint16, payload []byte) []byte {
	if len(payload) > camera.PacketSize-4 {
		panic(fmt.Sprintf("cameratest: payload of %d bytes; a packet holds %d", len(payload), camera.PacketSize-4))
	}
	start := len(dst)
	dst = append(dst, byte(id>>8)&0x0F, byte(id), 0, 0)
	dst = append(dst, payload...)
	for range camera.PacketSize - 4 - len(payload) {
		dst = append(dst, 0)
	}
	p := dst[start:]
	crc := CRC(p)
	p[0] = byte(id >> 8)
	p[2], p[3] = byte(crc>>8), byte(crc)
	return dst
}

// AppendDiscards appends n discard packets (ID 0x0F00, as a Lepton sends
// between frames and before sync; their CRC is not meaningful).
func AppendDiscards(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, discard[:]...)
	}
	return dst
}

var discard = func() (p [camera.PacketSize]byte) {
	p[0] = 0x0F
	for i := 2; i < len(p); i++ {
		p[i] = 0xA5 // not zero, so a reader that ignores the ID sees garbage
	}
	return p
}()

// Telemetry is what AppendFrame writes into telemetry line A. Zero fields
// other than Count and Uptime get the plausible defaults noted beside them.
type Telemetry struct {
	Count    uint32        // frame counter (~27 Hz)
	Uptime   time.Duration // ms resolution
	Revision uint16        // telemetry revision; 0 = 0x0E
	FPAcK    uint16        // focal-plane temperature, 0.01 K; 0 = 30315 (30 °C)
	Status   uint32        // status bits
}

// AppendFrame appends the 63 packets of one frame: telemetry lines A (from
// tm), B and C (zero), then the 60 video lines of pix (Width*Height counts,
// row-major, sent as given, so values above 14 bits test the decoder's
// mask).
func AppendFrame(dst []byte, pix []uint16, tm Telemetry) []byte {
	if len(pix) != camera.Width*camera.Height {
		panic(fmt.Sprintf("cameratest: %d pixels, want %d", len(pix), camera.Width*camera.Height))
	}
	for n := range camera.PacketsPerFrame {
		dst = AppendPacket(dst, uint16(n), Line(n, pix, tm))
	}
	return dst
}

// Line returns the 160-byte payload of packet n of a frame.
func Line(n int, pix []uint16, tm Telemetry) []byte {
	b := make([]byte, camera.PacketSize-4)
	switch {
	case n == 0:
		if tm.Revision == 0 {
			tm.Revision = 0x0E
		}
		if tm.FPAcK == 0 {
			tm.FPAcK = 30315
		}
		var mean uint64
		for _, v := range pix {
			mean += uint64(v)
		}
		mean /= uint64(len(pix))
		put16(b, 0, tm.Revision)
		put32(b, 1, uint32(tm.Uptime/time.Millisecond))
		put32(b, 3, tm.Status)
		put32(b, 20, tm.Count)
		put16(b, 22, uint16(mean))
		put16(b, 24, tm.FPAcK)
		put16(b, 26, tm.FPAcK+150) // housing a little warmer
	case n >= camera.TelemetryLines:
		row := pix[(n-camera.TelemetryLines)*camera.Width:][:camera.Width]
		for x, v := range row {
			b[2*x], b[2*x+1] = byte(v>>8), byte(v)
		}
	}
	return b
}

func put16(b []byte, w int, v uint16) { b[2*w], b[2*w+1] = byte(v>>8), byte(v) }

// put32 writes a 32-bit telemetry value: least significant word first.
func put32(b []byte, w int, v uint32) {
	put16(b, w, uint16(v))
	put16(b, w+1, uint16(v>>16))
}

// Playback returns periph's spitest.Playback serving stream in transfers of
// packetsPerTx packets, which is how the camera reads with
// Opts.PacketsPerTx = packetsPerTx. The stream is padded with discard
// packets to a whole number of transfers. Running past its end is an error
// (DontPanic is set), which Next returns.
func Playback(stream []byte, packetsPerTx int) *spitest.Playback {
	size := packetsPerTx * camera.PacketSize
	for len(stream)%size != 0 {
		stream = AppendDiscards(stream, 1)
	}
	p := &spitest.Playback{}
	p.DontPanic = true
	for i := 0; i < len(stream); i += size {
		p.Ops = append(p.Ops, conntest.IO{R: stream[i : i+size]})
	}
	return p
}

// Port is an spi.Port that serves a VoSPI stream byte by byte, whatever
// the transfer size: Stream in order, then from the start again if Loop is
// set, or else discard packets for ever (a camera with nothing to send). It
// records how it was connected and what was read. Set the fields before
// Connect; read them under the embedded mutex or after the reader stops.
type Port struct {
	sync.Mutex
	Stream []byte
	Loop   bool
	MaxTx  int // reported as conn.Limits.MaxTxSize; 0 = no limit

	Speed     physic.Frequency // as given to Connect
	Mode      spi.Mode
	Bits      int
	Connected bool
	Transfers int // transfers served
	LastLen   int // length of the last transfer
	Pos       int // bytes served
}

func (p *Port) String() string { return "cameratest.Port" }

// Connect implements spi.Port. Like a real port, it may be called once.
func (p *Port) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	p.Lock()
	defer p.Unlock()
	if p.Connected {
		return nil, fmt.Errorf("cameratest: Connect called twice")
	}
	p.Connected, p.Speed, p.Mode, p.Bits = true, f, mode, bits
	return &portConn{p}, nil
}

type portConn struct{ p *Port }

func (c *portConn) String() string      { return c.p.String() }
func (c *portConn) Duplex() conn.Duplex { return conn.Full }
func (c *portConn) MaxTxSize() int      { return c.p.MaxTx }

func (c *portConn) TxPackets([]spi.Packet) error {
	return fmt.Errorf("cameratest: TxPackets is not implemented")
}

// Tx serves len(r) bytes of the stream. The Lepton ignores MOSI, so a
// write is a caller's mistake and fails.
func (c *portConn) Tx(w, r []byte) error {
	p := c.p
	p.Lock()
	defer p.Unlock()
	if len(w) != 0 {
		return fmt.Errorf("cameratest: %d bytes written to a Lepton, which reads nothing", len(w))
	}
	if p.MaxTx > 0 && len(r) > p.MaxTx {
		return fmt.Errorf("cameratest: transfer of %d bytes over the port's limit of %d", len(r), p.MaxTx)
	}
	p.Transfers++
	p.LastLen = len(r)
	for len(r) > 0 {
		var n int
		switch k := p.Pos; {
		case k < len(p.Stream):
			n = copy(r, p.Stream[k:])
		case p.Loop && len(p.Stream) > 0:
			n = copy(r, p.Stream[k%len(p.Stream):])
		default:
			n = copy(r, discard[(k-len(p.Stream))%camera.PacketSize:])
		}
		r = r[n:]
		p.Pos += n
	}
	return nil
}

var (
	_ spi.Port    = &Port{}
	_ spi.Conn    = &portConn{}
	_ conn.Limits = &portConn{}
)
