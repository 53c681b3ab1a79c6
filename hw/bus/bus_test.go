package bus

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/sim"
	"periph.io/x/conn/v3/i2c/i2ctest"
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
		var b *Buses
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
		if err := b.Sensors.Tx(0x68, []byte{0x75}, id); err != nil || id[0] != 0x71 {
			t.Fatalf("WHO_AM_I over the opened bus: %v %#x", err, id[0])
		}
	})
}

// TestViewsFenceEveryActuator: on a Pi's bus (a recorder here), the
// actuators' view refuses a stale write at any address, the motor
// controller's or one added later, while the sensors' view configures a
// sensor at any epoch.
func TestViewsFenceEveryActuator(t *testing.T) {
	rec := &i2ctest.Record{}
	fence := &lease.Memory{}
	holder, stale := views(nopCloser{rec}, fence), views(nopCloser{rec}, fence)
	holder.Actuators.SetEpoch(2)
	if err := holder.Actuators.Tx(0x40, []byte{0x06, 1, 2, 3, 4}, nil); err != nil {
		t.Fatal(err)
	}
	stale.Actuators.SetEpoch(1)
	for _, addr := range []uint16{0x40, 0x41} {
		if err := stale.Actuators.Tx(addr, []byte{0x06, 0}, nil); !errors.Is(err, lease.ErrStale) {
			t.Errorf("stale actuator write to %#x: %v, want lease.ErrStale", addr, err)
		}
	}
	if err := stale.Sensors.Tx(0x68, []byte{0x6B, 0x01}, nil); err != nil {
		t.Errorf("sensor configuration refused: %v", err)
	}
}

type nopCloser struct{ *i2ctest.Record }

func (nopCloser) Close() error { return nil }
