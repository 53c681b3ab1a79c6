package bus

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/sim"
)

func TestOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := sim.New(sim.Config{})
	sock := filepath.Join(t.TempDir(), "sim.sock")
	ready := make(chan struct{})
	go func() {
		close(ready)
		d.Serve(ctx, sock)
	}()
	<-ready

	cases := []struct {
		name, spec, want string
	}{
		{"empty", "", "no bus given"},
		{"sim without path", "sim:", "names no socket"},
		{"sim socket missing", "sim:" + filepath.Join(t.TempDir(), "none.sock"), "drone-sim running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, Config{Spec: tc.spec, Name: "t"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) = %v, want an error mentioning %q", tc.spec, err, tc.want)
			}
		})
	}
	t.Run("sim", func(t *testing.T) {
		var b interface {
			Tx(uint16, []byte, []byte) error
			Close() error
		}
		var err error
		for range 100 { // the listener may need a moment
			if b, err = Open(ctx, Config{Spec: "sim:" + sock, Name: "t"}); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		id := make([]byte, 1)
		if err := b.Tx(0x68, []byte{0x75}, id); err != nil || id[0] != 0x71 {
			t.Fatalf("WHO_AM_I over the opened bus: %v %#x", err, id[0])
		}
	})
}
