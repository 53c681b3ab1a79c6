package sim_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// Raw wire format (see package simbus): u32 n | u8 op | payload, big-endian.
const (
	opHello = 1
	opTx    = 2

	statusOK  = 0
	statusBad = 3
)

func rawFrame(op byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	b = append(b, op)
	return append(b, payload...)
}

func rawHello(name string) []byte { return rawFrame(opHello, []byte(name)) }

// rawTx builds a tx frame whose declared write length is wlen (which a
// malformed frame may make differ from len(w)).
func rawTx(addr uint16, epoch uint64, wlen int, w []byte, rlen int) []byte {
	p := binary.BigEndian.AppendUint16(nil, addr)
	p = binary.BigEndian.AppendUint64(p, epoch)
	p = binary.BigEndian.AppendUint16(p, uint16(wlen))
	p = append(p, w...)
	p = binary.BigEndian.AppendUint16(p, uint16(rlen))
	return rawFrame(opTx, p)
}

// readResp reads one response frame: status and payload.
func readResp(c net.Conn) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > simbus.MaxFrame {
		return 0, nil, errors.New("response frame length out of range")
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// TestBadInputNeverCrashes proves that nothing a client can put on the bus
// takes the simulator down or wedges it: transactions a real I2C target
// would not acknowledge (absent address, reserved or read-only registers,
// reads with no register pointer, empty transactions) come back through a
// real socket client as errors wrapping simbus.ErrNACK with the connection
// still usable; raw malformed frames get a bad-request response (and a
// connection whose stream cannot be trusted any more is closed); and
// afterwards a fresh client still reads the IMU's WHO_AM_I and the
// simulator has counted the malformed requests.
func TestBadInputNeverCrashes(t *testing.T) {
	d := sim.New(sim.Config{})
	run(t, d)
	path := serve(t, d)

	c := dial(t, path, "fuzz")
	r1 := make([]byte, 1)
	cases := []struct {
		name  string
		epoch uint64
		addr  uint16
		w     []byte
		r     []byte
		want  error // nil = success
	}{
		// First, while no register pointer has been set on any chip.
		{"PCA9685 read with no pointer", 0, 0x40, nil, r1, simbus.ErrNACK},
		{"MPU9250 read with no pointer", 0, 0x68, nil, r1, simbus.ErrNACK},
		{"BMP280 read with no pointer", 0, 0x76, nil, r1, simbus.ErrNACK},
		{"absent address read", 0, 0x55, []byte{0x00}, r1, simbus.ErrNACK},
		{"absent address write", 1, 0x55, []byte{0x00, 0x01}, nil, simbus.ErrNACK},
		{"10-bit address", 0, 0x3ff, []byte{0x00}, r1, simbus.ErrNACK},
		{"PCA9685 reserved 0x50 read", 0, 0x40, []byte{0x50}, r1, simbus.ErrNACK},
		{"PCA9685 reserved 0x50 write", 1, 0x40, []byte{0x50, 0xff}, nil, simbus.ErrNACK},
		{"PCA9685 reserved 0x50 write without lease", 0, 0x40, []byte{0x50, 0xff}, nil, lease.ErrStale},
		{"PCA9685 TestMode write", 1, 0x40, []byte{0xFF, 0x01}, nil, simbus.ErrNACK},
		{"MPU9250 reserved 0x7F read", 0, 0x68, []byte{0x7F}, r1, simbus.ErrNACK},
		{"MPU9250 reserved 0x7F write", 0, 0x68, []byte{0x7F, 0x00}, nil, simbus.ErrNACK},
		{"MPU9250 0x80 out of map", 0, 0x68, []byte{0x80}, r1, simbus.ErrNACK},
		{"BMP280 reserved 0x00 read", 0, 0x76, []byte{0x00}, r1, simbus.ErrNACK},
		{"BMP280 reserved 0x00 write", 0, 0x76, []byte{0x00, 0x00}, nil, simbus.ErrNACK},
		{"BMP280 write to chip id", 0, 0x76, []byte{0xD0, 0x00}, nil, simbus.ErrNACK},
		{"empty transaction", 0, 0x68, nil, nil, simbus.ErrNACK},
		{"Lepton read with no pointer", 0, 0x2A, nil, r1, simbus.ErrNACK},
		{"Lepton odd register", 0, 0x2A, []byte{0x00, 0x03}, r1, simbus.ErrNACK},
		{"Lepton write to status", 0, 0x2A, []byte{0x00, 0x02, 0x00, 0x00}, nil, simbus.ErrNACK},
		// The largest read the wire carries is legal I2C: a target cannot
		// NACK bytes it sends, so it completes (reserved bytes read 0).
		{"largest read", 0, 0x68, []byte{0x75}, make([]byte, simbus.MaxFrame-1), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.SetEpoch(tc.epoch)
			err := c.Tx(tc.addr, tc.w, tc.r)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want one wrapping %v", err, tc.want)
			}
		})
	}
	// A read larger than a frame never leaves the client; the connection
	// is not spoilt by it.
	if err := c.Tx(0x68, []byte{0x75}, make([]byte, simbus.MaxFrame)); err == nil {
		t.Fatal("a read larger than a frame succeeded")
	}
	if err := c.Tx(0x68, []byte{0x75}, r1); err != nil || r1[0] != 0x71 {
		t.Fatalf("the same client after its refused transactions: %v, WHO_AM_I % x", err, r1)
	}

	hello := rawHello("raw")
	raw := []struct {
		name   string
		b      []byte
		want   string // in the bad-request text
		closes bool   // the server drops the connection after answering
	}{
		{"garbage length prefix", []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, "frame of", true},
		{"zero length prefix", []byte{0, 0, 0, 0}, "frame of", true},
		{"HTTP request", []byte("GET /state HTTP/1.1\r\n\r\n"), "frame of", true},
		{"tx before hello", rawTx(0x68, 0, 1, []byte{0x75}, 1), "hello", false},
		{"unknown op", append(hello, rawFrame(9, []byte{1})...), "unknown op", false},
		{"second hello", append(hello, rawHello("again")...), "once", false},
		{"empty hello", rawHello(""), "hello", false},
		{"hello not UTF-8", rawFrame(opHello, []byte{0xff, 0xfe}), "UTF-8", false},
		{"write length lies", append(hello, rawTx(0x68, 0, 9, []byte{0x75}, 1)...), "declares 9", false},
		{"short tx header", append(hello, rawFrame(opTx, []byte{0, 0x68, 0})...), "shorter", false},
		{"oversized read", append(hello, rawTx(0x68, 0, 1, []byte{0x75}, 0xffff)...), "asks to read", false},
		{"empty tx", append(hello, rawTx(0x68, 0, 0, nil, 0)...), "nothing", false},
	}
	before := d.Malformed()
	for _, tc := range raw {
		t.Run("raw/"+tc.name, func(t *testing.T) {
			conn, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(tc.b); err != nil {
				t.Fatal(err)
			}
			var status byte
			var text []byte
			for {
				if status, text, err = readResp(conn); err != nil {
					t.Fatalf("no response: %v", err)
				}
				if status != statusOK { // skip the hello's OK
					break
				}
			}
			if status != statusBad || !strings.Contains(string(text), tc.want) {
				t.Fatalf("status %d %q, want bad request mentioning %q", status, text, tc.want)
			}
			if tc.closes {
				// EOF, or a reset if the server closed with the rest of
				// the garbage unread.
				if _, _, err := readResp(conn); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("after a bad length prefix: %v, want the connection closed", err)
				}
				return
			}
			// The connection survives: a hello (if it had none) and a
			// well-formed read still work on it.
			if !strings.HasPrefix(string(tc.b), string(hello)) {
				conn.Write(rawHello("raw-retry"))
				if status, text, err := readResp(conn); err != nil || status != statusOK {
					t.Fatalf("hello after %s: status %d %q %v", tc.name, status, text, err)
				}
			}
			conn.Write(rawTx(0x68, 0, 1, []byte{0x75}, 1))
			status, text, err = readResp(conn)
			if err != nil || status != statusOK || len(text) != 1 || text[0] != 0x71 {
				t.Fatalf("WHO_AM_I on the same connection after %s: status %d % x %v", tc.name, status, text, err)
			}
		})
	}
	// A client that sends half a frame and vanishes.
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Write(append(rawHello("half"), 0, 0, 0, 40, opTx, 0))
		conn.Close()
	}

	// One count per bad request; "empty hello" is refused for itself and
	// then its retry is fine, "tx before hello" likewise.
	if got := d.Malformed() - before; got < uint64(len(raw)) {
		t.Fatalf("Malformed grew by %d over %d malformed requests", got, len(raw))
	}
	if d.Malformed() == 0 {
		t.Fatal("Malformed() = 0")
	}

	fresh := dial(t, path, "after-fuzz")
	id := make([]byte, 1)
	if err := fresh.Tx(0x68, []byte{0x75}, id); err != nil || id[0] != 0x71 {
		t.Fatalf("fresh client after the bad input: WHO_AM_I % x, %v; want 0x71", id, err)
	}
	t.Logf("malformed requests counted: %d", d.Malformed())
}
