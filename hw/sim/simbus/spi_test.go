package simbus

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// complement returns the bytes the echo SPI device answers to w over n
// clocked bytes.
func complement(w []byte, n int) []byte {
	r := make([]byte, n)
	for i := range r {
		var out byte
		if i < len(w) {
			out = w[i]
		}
		r[i] = ^out
	}
	return r
}

func TestSPIPort(t *testing.T) {
	h := &echo{}
	path, _ := serve(t, h)
	c, err := Dial(context.Background(), path, "camera-reader")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.SPIPort(0)
	if err := port.LimitSpeed(10 * physic.MegaHertz); err != nil {
		t.Fatal(err)
	}
	sc, err := port.Connect(20*physic.MegaHertz, spi.Mode3, 8)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := sc.(conn.Limits); !ok || l.MaxTxSize() != SPIMaxTxSize {
		t.Fatalf("connection does not report MaxTxSize %d", SPIMaxTxSize)
	}
	if sc.Duplex() != conn.Full {
		t.Fatalf("Duplex = %v, want Full", sc.Duplex())
	}
	if !strings.Contains(sc.String(), "10MHz") {
		t.Errorf("String %q does not show the limited speed", sc)
	}
	if _, err := port.Connect(0, spi.Mode0, 8); err == nil {
		t.Error("second Connect accepted")
	}

	for _, tc := range []struct {
		name string
		w    []byte
		r    int
	}{
		{"read only", nil, 164},
		{"write only", []byte{1, 2, 3}, 0},
		{"duplex", []byte{0x0f, 0xf0}, 2},
		{"largest", nil, SPIMaxTxSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := make([]byte, tc.r)
			if err := sc.Tx(tc.w, r); err != nil {
				t.Fatal(err)
			}
			if want := complement(tc.w, tc.r); !bytes.Equal(r, want) {
				t.Fatalf("read % x, want % x", r[:min(8, len(r))], want[:min(8, len(want))])
			}
		})
	}

	t.Run("packets", func(t *testing.T) {
		// Two transactions: the first joins a 2-byte write and a 3-byte
		// read with KeepCS, the second is a single 2-byte duplex packet.
		r1, r2 := make([]byte, 3), make([]byte, 2)
		err := sc.TxPackets([]spi.Packet{
			{W: []byte{0xaa, 0x55}, KeepCS: true},
			{R: r1},
			{W: []byte{1, 2}, R: r2},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The joined transaction clocked aa 55 00 00 00: the read part
		// sees the complement of the zeros.
		if !bytes.Equal(r1, []byte{0xff, 0xff, 0xff}) || !bytes.Equal(r2, []byte{0xfe, 0xfd}) {
			t.Fatalf("r1 % x r2 % x", r1, r2)
		}
	})

	for _, tc := range []struct {
		name string
		tx   func() error
	}{
		{"lengths differ", func() error { return sc.Tx([]byte{1}, make([]byte, 2)) }},
		{"nothing", func() error { return sc.Tx(nil, nil) }},
		{"too large", func() error { return sc.Tx(nil, make([]byte, SPIMaxTxSize+1)) }},
		{"open CS", func() error { return sc.TxPackets([]spi.Packet{{R: make([]byte, 1), KeepCS: true}}) }},
		{"16-bit words", func() error {
			return sc.TxPackets([]spi.Packet{{R: make([]byte, 2), BitsPerWord: 16, KeepCS: true}, {R: make([]byte, 2)}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.tx(); err == nil {
				t.Fatal("accepted")
			}
		})
	}

	t.Run("no device", func(t *testing.T) {
		sc1, err := c.SPIPort(1).Connect(0, spi.Mode0, 8)
		if err != nil {
			t.Fatal(err)
		}
		if err := sc1.Tx(nil, make([]byte, 4)); !errors.Is(err, ErrNACK) {
			t.Fatalf("err = %v, want ErrNACK", err)
		}
	})

	// The connection still carries I2C, under the same client.
	if err := c.Tx(0x40, []byte{0}, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	for _, s := range h.seen {
		if s.Name != "camera-reader" {
			t.Fatalf("handler saw client %+v", s)
		}
	}

	if err := port.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Tx(nil, make([]byte, 1)); !errors.Is(err, ErrPortClosed) {
		t.Fatalf("Tx after Close: %v, want ErrPortClosed", err)
	}
	if err := c.Tx(0x40, []byte{0}, make([]byte, 1)); err != nil {
		t.Fatalf("closing the port closed the connection: %v", err)
	}
}

func TestSPIConnectRefuses(t *testing.T) {
	path, _ := serve(t, &echo{})
	c, err := Dial(context.Background(), path, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name string
		f    physic.Frequency
		mode spi.Mode
		bits int
	}{
		{"half duplex", 0, spi.Mode3 | spi.HalfDuplex, 8},
		{"no CS", 0, spi.Mode0 | spi.NoCS, 8},
		{"LSB first", 0, spi.Mode0 | spi.LSBFirst, 8},
		{"9 bits", 0, spi.Mode0, 9},
		{"negative speed", -1, spi.Mode0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.SPIPort(0).Connect(tc.f, tc.mode, tc.bits); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	p := c.SPIPort(0)
	p.Close()
	if _, err := p.Connect(0, spi.Mode0, 8); !errors.Is(err, ErrPortClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
	if err := p.LimitSpeed(0); err == nil {
		t.Fatal("LimitSpeed(0) accepted")
	}
}

func TestSPIWithoutSPIHandler(t *testing.T) {
	path, srv := serve(t, i2cOnly{&echo{}})
	c, err := Dial(context.Background(), path, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := c.SPIPort(0).Connect(0, spi.Mode3, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Tx(nil, make([]byte, 4)); !errors.Is(err, ErrNACK) || !strings.Contains(err.Error(), "no SPI bus") {
		t.Fatalf("err = %v, want ErrNACK saying there is no SPI bus", err)
	}
	if srv.Malformed.Load() != 0 {
		t.Fatal("a well-formed spi request counted as malformed")
	}
	if err := c.Tx(0x40, []byte{0}, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSPIRead measures one 24-packet VoSPI-sized read (3936 bytes)
// over the socket, with a device that answers at once.
func BenchmarkSPIRead(b *testing.B) {
	path, _ := serve(b, &echo{})
	c, err := Dial(context.Background(), path, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sc, err := c.SPIPort(0).Connect(0, spi.Mode3, 8)
	if err != nil {
		b.Fatal(err)
	}
	r := make([]byte, 24*164)
	b.SetBytes(int64(len(r)))
	for b.Loop() {
		if err := sc.Tx(nil, r); err != nil {
			b.Fatal(err)
		}
	}
}
