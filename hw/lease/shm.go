package lease

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shm is a Fence whose highest epoch lives in a shared-memory file (for
// example /dev/shm/skyswap-lease or /run/skyswap/lease, mounted into every
// flight container). It is what fences writers on a Pi, where the I2C
// controller itself knows nothing of epochs: every actuator write is
// preceded by an atomic check-and-raise of the shared word.
//
// The check and the I2C write are two steps, so a stale writer that passed
// the check an instant before the new holder raised the epoch can still land
// one write. The hand-over protocol already keeps the old owner from writing
// at or after the cut-over tick; the fence catches the writer that ignores
// the protocol (hung, partitioned, buggy) from its next tick on.
type Shm struct {
	mem  []byte
	word *uint64
}

var _ Fence = (*Shm)(nil)

// OpenShm maps the fence word in path, creating the file (8 zero bytes,
// mode 0660) if it does not exist.
func OpenShm(path string) (*Shm, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o660)
	if err != nil {
		return nil, fmt.Errorf("lease: open fence %s: %w (is the lease file mounted read-write?)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("lease: stat fence %s: %w", path, err)
	}
	if fi.Size() < 8 {
		if err := f.Truncate(8); err != nil {
			return nil, fmt.Errorf("lease: size fence %s: %w", path, err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("lease: map fence %s: %w", path, err)
	}
	return &Shm{mem: mem, word: (*uint64)(unsafe.Pointer(&mem[0]))}, nil
}

// Admit implements Fence with a compare-and-swap loop on the shared word.
func (s *Shm) Admit(epoch uint64) error {
	for {
		cur := atomic.LoadUint64(s.word)
		if err := check(epoch, cur); err != nil {
			return err
		}
		if epoch == cur || atomic.CompareAndSwapUint64(s.word, cur, epoch) {
			return nil
		}
	}
}

// Epoch implements Fence.
func (s *Shm) Epoch() uint64 { return atomic.LoadUint64(s.word) }

// Close unmaps the word.
func (s *Shm) Close() error { return unix.Munmap(s.mem) }
