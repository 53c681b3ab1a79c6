package simbus

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/skyswap/skyswap/hw/lease"
)

var update = flag.Bool("update", false, "rewrite golden files")

// echo is a Handler with one register file at 0x40: a write stores bytes
// from the pointer on, a read returns them. Epochs are fenced.
type echo struct {
	mu    sync.Mutex
	regs  [256]byte
	fence lease.Memory
	seen  []Client
}

func (e *echo) Tx(c Client, addr uint16, epoch uint64, w, r []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, c)
	if addr != 0x40 {
		return fmt.Errorf("%w: no device at %#x", ErrNACK, addr)
	}
	if len(w) > 1 {
		if err := e.fence.Admit(epoch, 1234); err != nil {
			return err
		}
		copy(e.regs[w[0]:], w[1:])
		e.fence.Stamp(epoch, 1234)
	}
	if len(r) > 0 {
		copy(r, e.regs[w[0]:])
	}
	return nil
}

// SPI implements SPIHandler with one device on chip select 0 that answers
// each byte clocked with the complement of what it received (MOSI reads 0
// past the end of w).
func (e *echo) Lease(c Client, release uint64) (lease.Beat, error) {
	if release > 0 {
		e.fence.Release(release)
	}
	return e.fence.Beat(), nil
}

func (e *echo) SPI(c Client, dev uint8, w, r []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, c)
	if dev != 0 {
		return fmt.Errorf("no device on chip select %d", dev)
	}
	for i := range r {
		var out byte
		if i < len(w) {
			out = w[i]
		}
		r[i] = ^out
	}
	return nil
}

// i2cOnly is a Handler without an SPI bus.
type i2cOnly struct{ h Handler }

func (o i2cOnly) Tx(c Client, addr uint16, epoch uint64, w, r []byte) error {
	return o.h.Tx(c, addr, epoch, w, r)
}

func serve(t testing.TB, h Handler) (path string, srv *Server) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "sim.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	srv = NewServer(h, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, srv
}

func TestWireGolden(t *testing.T) {
	frames := []struct {
		name string
		b    []byte
	}{
		{"hello", appendHello(nil, "flight-v1")},
		{"tx-write", appendTx(nil, 0x40, 7, []byte{0x06, 0, 0, 0x9a, 0x06}, 0)},
		{"tx-read", appendTx(nil, 0x68, 0, []byte{0x3b}, 14)},
		{"response-ok", appendResponse(nil, statusOK, []byte{1, 2})},
		{"response-stale", appendResponse(nil, statusStale, []byte("stale"))},
		{"spi-read", appendSPI(nil, 0, nil, 164)},
		{"spi-duplex", appendSPI(nil, 1, []byte{0x9f, 0, 0}, 3)},
		{"lease-read", appendLease(nil, 0)},
		{"lease-release", appendLease(nil, 7)},
		{"response-beat", appendResponse(nil, statusOK, appendBeat(nil, lease.Beat{Highest: 8, Epoch: 7, T: 1e9, Writes: 400, Released: 6}))},
	}
	var got bytes.Buffer
	for _, f := range frames {
		fmt.Fprintf(&got, "%s %s\n", f.name, hex.EncodeToString(f.b))
	}
	golden := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("wire format changed: old clients and drone-sim would not understand each other\ngot:\n%s\nwant:\n%s", got.Bytes(), want)
	}
}

func TestLease(t *testing.T) {
	h := &echo{}
	path, _ := serve(t, h)
	c, err := Dial(context.Background(), path, "flight-v1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetEpoch(3)
	if err := c.Tx(0x40, []byte{0x06, 1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := c.Beat()
	if want := (lease.Beat{Highest: 3, Epoch: 3, T: 1234, Writes: 1}); err != nil || b != want {
		t.Fatalf("Beat = %+v, %v; want %+v", b, err, want)
	}
	if err := c.Release(3); err != nil {
		t.Fatal(err)
	}
	if b, _ := c.Beat(); b.Released != 3 {
		t.Fatalf("released %d after Release(3)", b.Released)
	}
	if err := c.Release(0); err == nil {
		t.Fatal("Release(0) accepted: epoch 0 holds no lease")
	}

	// A drone that keeps no lease says so; a malformed request is refused
	// and counted, and the connection stays usable.
	np, _ := serve(t, noLease{h})
	c2, err := Dial(context.Background(), np, "flight-v1")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Beat(); !errors.Is(err, ErrNACK) {
		t.Fatalf("Beat on a drone without a lease: %v, want a NACK", err)
	}
	c.mu.Lock()
	c.out = append(binary.BigEndian.AppendUint32(c.out[:0], 1+3), opLease, 1, 2, 3)
	_, err = c.roundTrip(nil)
	c.mu.Unlock()
	if !errors.Is(err, ErrNACK) || !strings.Contains(err.Error(), "lease payload") {
		t.Fatalf("short lease request: %v", err)
	}
	if _, err := c.Beat(); err != nil {
		t.Fatalf("the connection broke after a malformed lease request: %v", err)
	}
}

// noLease is a handler without a lease.
type noLease struct{ e *echo }

func (n noLease) Tx(c Client, addr uint16, epoch uint64, w, r []byte) error {
	return n.e.Tx(c, addr, epoch, w, r)
}

func TestRoundTrip(t *testing.T) {
	h := &echo{}
	path, _ := serve(t, h)
	ctx := context.Background()
	c, err := Dial(ctx, path, "flight-v1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetEpoch(1)
	if err := c.Tx(0x40, []byte{0x10, 0xaa, 0xbb}, nil); err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 2)
	if err := c.Tx(0x40, []byte{0x10}, r); err != nil {
		t.Fatal(err)
	}
	if r[0] != 0xaa || r[1] != 0xbb {
		t.Fatalf("read back % x", r)
	}
	if err := c.Tx(0x41, []byte{0}, r); !errors.Is(err, ErrNACK) {
		t.Fatalf("absent device: err = %v, want ErrNACK", err)
	}

	// A second client with a newer epoch is refused while the first holds
	// the lease (ErrHeld, its own status on the wire), and fences the first
	// once it released.
	c2, err := Dial(ctx, path, "flight-v2")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetEpoch(2)
	if err := c2.Tx(0x40, []byte{0x10, 1}, nil); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("newer epoch while the holder holds: err = %v, want lease.ErrHeld", err)
	}
	if err := c.Release(1); err != nil {
		t.Fatal(err)
	}
	if err := c2.Tx(0x40, []byte{0x10, 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Tx(0x40, []byte{0x10, 2}, nil); !errors.Is(err, lease.ErrStale) {
		t.Fatalf("stale write: err = %v, want lease.ErrStale", err)
	}
	// The connection survives a refusal.
	if err := c.Tx(0x40, []byte{0x10}, r[:1]); err != nil || r[0] != 1 {
		t.Fatalf("read after refusal: %v, % x", err, r[:1])
	}
	names := map[string]uint64{}
	for _, s := range h.seen {
		names[s.Name] = s.ID
	}
	if len(names) != 2 || names["flight-v1"] == names["flight-v2"] {
		t.Fatalf("clients not told apart: %v", names)
	}
}

func TestConcurrentClients(t *testing.T) {
	path, _ := serve(t, &echo{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), path, fmt.Sprintf("reader-%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := make([]byte, 4)
			for range 200 {
				if err := c.Tx(0x40, []byte{0}, r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMalformedRequests(t *testing.T) {
	path, srv := serve(t, &echo{})
	// Clipped, so that each case that appends to it gets its own copy.
	hello := slices.Clip(appendHello(nil, "fuzz"))
	tx := appendTx(nil, 0x40, 1, []byte{0, 1}, 0)
	truncated := append([]byte(nil), tx...)
	binary.BigEndian.PutUint16(truncated[4+1+2+8:], 9) // declares 9 write bytes, carries 2
	huge := binary.BigEndian.AppendUint32(nil, MaxFrame+1)
	spiLies := appendSPI(nil, 0, []byte{1, 2}, 0)
	binary.BigEndian.PutUint16(spiLies[4+1+1:], 7) // declares 7 write bytes, carries 2
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"tx before hello", tx, "hello"},
		{"unknown op", append(hello, 0, 0, 0, 1, 9), "unknown op"},
		{"write length lies", append(hello, truncated...), "declares 9"},
		{"empty tx", append(hello, appendTx(nil, 0x40, 1, nil, 0)...), "nothing"},
		{"empty hello", appendHello(nil, ""), "hello"},
		{"second hello", append(hello, appendHello(nil, "again")...), "once"},
		{"oversized frame", huge, "frame of"},
		{"spi before hello", appendSPI(nil, 0, nil, 4), "hello"},
		{"spi write length lies", append(hello, spiLies...), "declares 7"},
		{"empty spi", append(hello, appendSPI(nil, 0, nil, 0)...), "nothing"},
		{"spi read too large", append(hello, appendSPI(nil, 0, nil, MaxFrame)...), "at most"},
		{"short spi", append(hello, 0, 0, 0, 3, opSPI, 0, 0), "shorter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.b); err != nil {
				t.Fatal(err)
			}
			// Skip a successful hello response if the case starts with one.
			var status byte
			var text []byte
			for {
				status, text, _, err = readFrame(c, nil)
				if err != nil {
					t.Fatalf("no response: %v", err)
				}
				if status != statusOK {
					break
				}
			}
			if status != statusBad || !strings.Contains(string(text), tc.want) {
				t.Fatalf("status %d %q, want bad request mentioning %q", status, text, tc.want)
			}
		})
	}
	if srv.Malformed.Load() < uint64(len(cases)) {
		t.Fatalf("Malformed = %d, want >= %d", srv.Malformed.Load(), len(cases))
	}
	// The server still serves well-formed clients.
	c, err := Dial(context.Background(), path, "after")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Tx(0x40, []byte{0}, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestDialErrors(t *testing.T) {
	if _, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "x"); err == nil || !strings.Contains(err.Error(), "drone-sim running") {
		t.Fatalf("dial to nothing: %v", err)
	}
	if _, err := Dial(context.Background(), "/nonexistent", ""); err == nil {
		t.Fatal("empty name accepted")
	}
}

func FuzzParseTx(f *testing.F) {
	f.Add(appendTx(nil, 0x40, 1, []byte{0, 1}, 3)[5:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		req, err := parseTx(p)
		if err == nil && len(req.w) == 0 && req.rlen == 0 {
			t.Fatal("accepted an empty transaction")
		}
	})
}

func FuzzParseSPI(f *testing.F) {
	f.Add(appendSPI(nil, 0, []byte{0, 1}, 2)[5:])
	f.Add(appendSPI(nil, 0, nil, 164)[5:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		req, err := parseSPI(p)
		if err == nil && len(req.w) == 0 && req.rlen == 0 {
			t.Fatal("accepted an empty transaction")
		}
		if err == nil && req.rlen > MaxFrame-1 {
			t.Fatalf("accepted a read of %d bytes", req.rlen)
		}
	})
}
