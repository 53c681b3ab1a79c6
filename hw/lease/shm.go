package lease

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shm is a Fence whose state lives in a shared-memory file (for example
// /dev/shm/skyswap-lease or /run/skyswap/lease, mounted into every flight
// container and read by the agent). It is what fences writers on a Pi,
// where the I2C controller itself knows nothing of epochs: every actuator
// write is preceded by an atomic check-and-raise of the shared epoch word
// and followed by a stamp of the heartbeat words.
//
// The file holds five little-endian 64-bit words: the highest epoch, the
// epoch and CLOCK_MONOTONIC time of the last accepted actuator write, the
// count of accepted writes, and the highest released epoch. Each is read
// and written atomically on its own; a reader may see a stamp's epoch and
// time from two successive writes, which only ever makes the holder look a
// write younger or older.
//
// The check and the I2C write are two steps, so a stale writer that passed
// the check an instant before the new holder raised the epoch can still land
// one write. The hand-over protocol already keeps the old owner from writing
// at or after the cut-over tick; the fence catches the writer that ignores
// the protocol (hung, partitioned, buggy) from its next tick on.
type Shm struct {
	mem []byte
	w   *[shmWords]uint64
}

// The words of the file, in order.
const (
	wHighest = iota
	wEpoch
	wTime
	wWrites
	wReleased
	shmWords
)

const shmSize = shmWords * 8

var _ Fence = (*Shm)(nil)

// OpenShm maps the lease in path, creating the file (zeros, mode 0660) if
// it does not exist, and growing an older 8-byte one (epoch only).
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
	if fi.Size() < shmSize {
		if err := f.Truncate(shmSize); err != nil {
			return nil, fmt.Errorf("lease: size fence %s: %w", path, err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, shmSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("lease: map fence %s: %w", path, err)
	}
	return &Shm{mem: mem, w: (*[shmWords]uint64)(unsafe.Pointer(&mem[0]))}, nil
}

// Admit implements Fence with a compare-and-swap loop on the shared word.
// The holder's liveness (its last stamp, its release) is read before the
// swap: a holder whose write is under way as a newer epoch takes over can
// land that one write, as the package doc says of the two steps.
func (s *Shm) Admit(epoch uint64, now int64) error {
	for {
		b := s.Beat()
		if err := check(epoch, b, now); err != nil {
			return err
		}
		if epoch == b.Highest || atomic.CompareAndSwapUint64(&s.w[wHighest], b.Highest, epoch) {
			return nil
		}
	}
}

// Epoch implements Fence.
func (s *Shm) Epoch() uint64 { return atomic.LoadUint64(&s.w[wHighest]) }

// Stamp implements Fence.
func (s *Shm) Stamp(epoch uint64, t int64) {
	atomic.StoreUint64(&s.w[wEpoch], epoch)
	atomic.StoreUint64(&s.w[wTime], uint64(t))
	atomic.AddUint64(&s.w[wWrites], 1)
}

// Release implements Fence.
func (s *Shm) Release(epoch uint64) {
	for {
		cur := atomic.LoadUint64(&s.w[wReleased])
		if epoch <= cur || atomic.CompareAndSwapUint64(&s.w[wReleased], cur, epoch) {
			return
		}
	}
}

// Beat implements Fence.
func (s *Shm) Beat() Beat {
	return Beat{
		Highest:  atomic.LoadUint64(&s.w[wHighest]),
		Epoch:    atomic.LoadUint64(&s.w[wEpoch]),
		T:        int64(atomic.LoadUint64(&s.w[wTime])),
		Writes:   atomic.LoadUint64(&s.w[wWrites]),
		Released: atomic.LoadUint64(&s.w[wReleased]),
	}
}

// Close unmaps the lease.
func (s *Shm) Close() error { return unix.Munmap(s.mem) }
