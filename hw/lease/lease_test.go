package lease

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/skyswap/skyswap/hw/mono"
)

func TestFences(t *testing.T) {
	shm, err := OpenShm(filepath.Join(t.TempDir(), "lease"))
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	ms := int64(time.Millisecond)
	hold := int64(HolderTimeout)
	for name, f := range map[string]Fence{"memory": &Memory{}, "shm": shm} {
		t.Run(name, func(t *testing.T) {
			steps := []struct {
				name    string
				epoch   uint64
				now     int64
				release uint64 // released before the write (0 = none)
				want    error  // nil, ErrStale or ErrHeld
				after   uint64
			}{
				{"no lease", 0, 1 * ms, 0, ErrStale, 0},
				{"first holder", 1, 2 * ms, 0, nil, 1},
				{"same holder again", 1, 3 * ms, 0, nil, 1},
				{"a newer one while the holder writes", 3, 4 * ms, 0, ErrHeld, 1},
				{"just short of the holder timeout", 3, 3*ms + hold - 1, 0, ErrHeld, 1},
				{"after the holder timeout", 3, 3*ms + hold, 0, nil, 3},
				{"the old holder is fenced out", 1, 3*ms + hold + 1, 0, ErrStale, 3},
				{"an older one", 2, 3*ms + hold + 2, 0, ErrStale, 3},
				{"the holder", 3, 3*ms + hold + 3, 0, nil, 3},
				{"a newer one once the holder released", 4, 3*ms + hold + 4, 3, nil, 4},
				{"a release of an older epoch frees nothing", 6, 3*ms + hold + 5, 3, ErrHeld, 4},
			}
			for _, s := range steps {
				if s.release > 0 {
					f.Release(s.release)
				}
				err := f.Admit(s.epoch, s.now)
				switch {
				case s.want == nil && err != nil, s.want != nil && !errors.Is(err, s.want):
					t.Errorf("%s: Admit(%d) = %v, want %v", s.name, s.epoch, err, s.want)
				case err == nil:
					f.Stamp(s.epoch, s.now)
				}
				if got := f.Epoch(); got != s.after {
					t.Errorf("%s: Epoch() = %d, want %d", s.name, got, s.after)
				}
			}
		})
	}
}

func TestShmIsShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease")
	a, err := OpenShm(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenShm(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Admit(5, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Admit(4, 2); !errors.Is(err, ErrStale) {
		t.Fatalf("second mapping admitted epoch 4 after 5: %v", err)
	}
}

func TestShmConcurrentRaise(t *testing.T) {
	f, err := OpenShm(filepath.Join(t.TempDir(), "lease"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for e := uint64(1); e <= 64; e++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.Admit(e, 1) }() // nobody writes: each may raise
	}
	wg.Wait()
	if got := f.Epoch(); got != 64 {
		t.Fatalf("highest epoch = %d, want 64", got)
	}
}

// TestFencedBus: the actuators' view fences every write, at any address:
// an actuator driver added later is fenced without being listed anywhere.
// Reads (a register-pointer write, then a read) pass at any epoch.
func TestFencedBus(t *testing.T) {
	rec := &i2ctest.Record{}
	fence := &Memory{}
	bus := Fenced(nopCloser{rec}, fence)
	bus.SetEpoch(2)
	if err := bus.Tx(0x40, []byte{0x06, 1, 2, 3, 4}, nil); err != nil {
		t.Fatalf("holder's write refused: %v", err)
	}
	stale := Fenced(nopCloser{rec}, fence)
	stale.SetEpoch(1)
	for _, addr := range []uint16{0x40, 0x41, 0x60, 0x70} { // the PCA9685, and actuators added later
		if err := stale.Tx(addr, []byte{0x06, 0, 0, 0, 0}, nil); !errors.Is(err, ErrStale) {
			t.Fatalf("stale write to %#x: err = %v, want ErrStale", addr, err)
		}
	}
	if err := stale.Tx(0x40, []byte{0x00}, nil); err != nil {
		t.Fatalf("stale register-pointer write refused: %v", err)
	}
	if n := len(rec.Ops); n != 2 {
		t.Fatalf("%d transactions reached the bus, want 2 (no stale write may)", n)
	}
}

type nopCloser struct{ *i2ctest.Record }

func (nopCloser) Close() error { return nil }

func TestBeat(t *testing.T) {
	shm, err := OpenShm(filepath.Join(t.TempDir(), "lease"))
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	for name, f := range map[string]Fence{"memory": &Memory{}, "shm": shm} {
		t.Run(name, func(t *testing.T) {
			if b := f.Beat(); b != (Beat{}) {
				t.Fatalf("a new lease's beat is %+v, want zero", b)
			}
			f.Admit(2, 1000)
			f.Stamp(2, 1000)
			f.Stamp(2, 3500)
			f.Release(2)
			f.Release(1) // releases only grow
			want := Beat{Highest: 2, Epoch: 2, T: 3500, Writes: 2, Released: 2}
			if b := f.Beat(); b != want {
				t.Fatalf("beat %+v, want %+v", b, want)
			}
		})
	}
}

func TestBeatSilent(t *testing.T) {
	b := Beat{Highest: 3, Epoch: 2, T: 1000}
	if got := b.Silent(1500); got != 500 {
		t.Errorf("Silent(1500) = %d, want 500", got)
	}
	if got := (Beat{}).Silent(5); got != 1<<63-1 {
		t.Errorf("a lease never written is silent for %d, want forever", got)
	}
}

func TestShmGrowsOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease")
	// An 8-byte lease from before the heartbeat: epoch 7.
	if err := os.WriteFile(path, []byte{7, 0, 0, 0, 0, 0, 0, 0}, 0o660); err != nil {
		t.Fatal(err)
	}
	s, err := OpenShm(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if b := s.Beat(); b != (Beat{Highest: 7}) {
		t.Fatalf("beat of the grown file %+v, want epoch 7 and nothing else", b)
	}
}

func TestFencedBusStamps(t *testing.T) {
	rec := &i2ctest.Record{}
	fence := &Memory{}
	bus := Fenced(nopCloser{rec}, fence)
	bus.SetEpoch(3)
	if err := bus.Tx(0x40, []byte{0x00}, nil); err != nil { // a register-pointer write
		t.Fatal(err)
	}
	if b, _ := bus.Beat(); b.Writes != 0 {
		t.Fatalf("a register-pointer write stamped the heartbeat: %+v", b)
	}
	before := mono.Now()
	if err := bus.Tx(0x40, []byte{0x06, 1, 2, 3, 4}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := bus.Beat()
	if b.Writes != 1 || b.Epoch != 3 || b.T < before {
		t.Fatalf("beat after one write %+v (written after %d)", b, before)
	}
	if err := bus.Release(3); err != nil {
		t.Fatal(err)
	}
	if b, _ := bus.Beat(); b.Released != 3 {
		t.Fatalf("released %d, want 3", b.Released)
	}
	// A refused write leaves the beat as it was.
	stale := Fenced(nopCloser{rec}, fence)
	stale.SetEpoch(1)
	stale.Tx(0x40, []byte{0x06, 0}, nil)
	if b2, _ := bus.Beat(); b2.Writes != 1 {
		t.Fatalf("a refused write was stamped: %+v", b2)
	}
}
