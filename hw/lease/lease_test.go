package lease

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestFences(t *testing.T) {
	shm, err := OpenShm(filepath.Join(t.TempDir(), "lease"))
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	for name, f := range map[string]Fence{"memory": &Memory{}, "shm": shm} {
		t.Run(name, func(t *testing.T) {
			steps := []struct {
				epoch uint64
				stale bool
				after uint64
			}{
				{0, true, 0},  // no lease
				{1, false, 1}, // first holder
				{1, false, 1}, // same holder again
				{3, false, 3}, // a newer holder fences...
				{1, true, 3},  // ...the old one out
				{2, true, 3},
				{3, false, 3},
			}
			for i, s := range steps {
				err := f.Admit(s.epoch)
				if got := errors.Is(err, ErrStale); got != s.stale {
					t.Errorf("step %d: Admit(%d) = %v, want stale=%v", i, s.epoch, err, s.stale)
				}
				if got := f.Epoch(); got != s.after {
					t.Errorf("step %d: Epoch() = %d, want %d", i, got, s.after)
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
	if err := a.Admit(5); err != nil {
		t.Fatal(err)
	}
	if err := b.Admit(4); !errors.Is(err, ErrStale) {
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
		go func() { defer wg.Done(); _ = f.Admit(e) }()
	}
	wg.Wait()
	if got := f.Epoch(); got != 64 {
		t.Fatalf("highest epoch = %d, want 64", got)
	}
}

func TestFencedBus(t *testing.T) {
	rec := &i2ctest.Record{}
	fence := &Memory{}
	bus := Fenced(nopCloser{rec}, fence, 0x40)
	bus.SetEpoch(2)
	if err := bus.Tx(0x40, []byte{0x06, 1, 2, 3, 4}, nil); err != nil {
		t.Fatalf("holder's write refused: %v", err)
	}
	stale := Fenced(nopCloser{rec}, fence, 0x40)
	stale.SetEpoch(1)
	if err := stale.Tx(0x40, []byte{0x06, 0, 0, 0, 0}, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("stale write: err = %v, want ErrStale", err)
	}
	// Reads and other addresses pass whatever the epoch.
	if err := stale.Tx(0x40, []byte{0x00}, nil); err != nil {
		t.Fatalf("stale register-pointer write refused: %v", err)
	}
	if err := stale.Tx(0x68, []byte{0x6B, 0}, nil); err != nil {
		t.Fatalf("non-actuator write refused: %v", err)
	}
	if n := len(rec.Ops); n != 3 {
		t.Fatalf("%d transactions reached the bus, want 3 (the stale write must not)", n)
	}
}

type nopCloser struct{ *i2ctest.Record }

func (nopCloser) Close() error { return nil }
