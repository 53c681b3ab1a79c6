// Package lease is the hardware write lease with a fencing epoch, and the
// holder's heartbeat.
//
// Exactly one process may drive the actuators at a time: the holder of the
// current epoch. Epochs only grow. The thing being written (the virtual
// drone's bus, or on a Pi a word in shared memory checked before every
// actuator write) remembers the highest epoch it has seen and refuses any write
// that carries a lower one: a stale holder is shut out, not merely asked to
// stop. This is the classic fencing token: the hand-over coordinator gives the
// candidate epoch E+1, and the candidate's first write fences the old owner.
//
// The lease also keeps the Beat: the epoch and time of the last accepted
// actuator write, a count of them, and the highest epoch its holder has
// released (handed over). It is stamped where the writes happen, so whoever
// must judge whether the holder is alive (a standby, the agent) reads it
// there, without any message queue in between: a holder whose writes stopped
// for HolderTimeout is presumed gone.
//
// A newer epoch takes the hardware only from a holder that let go: one that
// released its epoch (a planned cut-over) or whose writes stopped for
// HolderTimeout (it died or hung). A write that would raise the epoch while
// the holder is still writing is refused with ErrHeld, so the decision to
// take the hardware back is made where the writes happen, atomically with
// the write: a standby whose view of the holder was late (its read of the
// lease, or its own thread, delayed) cannot displace a live holder. Only a
// first holder (nothing admitted yet) takes the lease without either.
//
// Epoch 0 means "no lease": a process with epoch 0 may read sensors but every
// actuator write it makes is refused.
package lease

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// ErrStale is the class of errors for an actuator write refused because its
// epoch is older than the newest one the fence has seen (or is 0).
var ErrStale = errors.New("lease: stale epoch")

// ErrHeld is the class of errors for an actuator write refused because its
// newer epoch would take the hardware from a holder that neither released
// it nor fell silent for HolderTimeout: the holder is alive. The writer
// stays off the hardware and may try again later.
var ErrHeld = errors.New("lease: held by a live holder")

// HolderTimeout is how long the holder's accepted actuator writes may stop
// before it is presumed gone: a newer epoch may then take the hardware
// without a release (a standby's take-back), and the fence admits it. The
// motor controller holds its last outputs meanwhile, so the drone flies
// open-loop for at most this long: 100 ms of a hover's outputs held under a
// 1 N gust moves the reference airframe by about 5 mm and 0.3°. It is long
// against a live holder's write rhythm (a tick is 0.5-10 ms at 100-2000 Hz;
// on a loaded 2-core machine a live loop stalls for 20-30 ms now and then,
// and for 50-60 ms under an overload), so a loop the scheduler held back
// is not taken for a dead one. The fence, the standby (handoff), the
// agent's probation check and the referee's false take-back count all use
// this one value.
const HolderTimeout = 100 * time.Millisecond

// Beat is what the lease knows of its holder.
type Beat struct {
	Highest  uint64 `json:"highest"`  // highest epoch admitted
	Epoch    uint64 `json:"epoch"`    // epoch of the last accepted actuator write (0 = none yet)
	T        int64  `json:"t"`        // its time, CLOCK_MONOTONIC ns
	Writes   uint64 `json:"writes"`   // accepted actuator writes so far
	Released uint64 `json:"released"` // highest epoch whose holder released it (handed over)
}

// Silent returns how long before now (CLOCK_MONOTONIC ns) the last
// accepted actuator write was, by whichever holder; a lease never written
// is silent since forever.
func (b Beat) Silent(now int64) int64 {
	if b.T == 0 {
		return 1<<63 - 1
	}
	return now - b.T
}

// Bus is an I2C bus whose actuator writes carry the writer's lease epoch.
// Drivers see a plain i2c.Bus; the application sets the epoch it holds.
type Bus interface {
	i2c.BusCloser
	// SetEpoch sets the epoch carried by subsequent writes. 0 = no lease.
	SetEpoch(epoch uint64)
	Reader
	// Release records that the holder of epoch has stopped writing
	// (handed over). Nothing is refused because of it: the next holder's
	// higher epoch does the fencing.
	Release(epoch uint64) error
}

// Reader reads the lease's heartbeat.
type Reader interface {
	Beat() (Beat, error)
}

// Fence admits or refuses writes by epoch and keeps the heartbeat.
type Fence interface {
	// Admit returns an error wrapping ErrStale if epoch is 0 or lower than
	// the highest epoch admitted so far, and one wrapping ErrHeld if it is
	// higher while the highest's holder neither released it nor was silent
	// for HolderTimeout at now (CLOCK_MONOTONIC ns); otherwise it records
	// epoch as the highest and returns nil.
	Admit(epoch uint64, now int64) error
	// Epoch returns the highest epoch admitted so far.
	Epoch() uint64
	// Stamp records an accepted actuator write of epoch at t
	// (CLOCK_MONOTONIC ns). Call it once the write has reached the chip.
	Stamp(epoch uint64, t int64)
	// Release records that epoch's holder handed over.
	Release(epoch uint64)
	// Beat returns the heartbeat.
	Beat() Beat
}

// Memory is a Fence held in process memory. The virtual drone uses it: the
// simulated bus is the single place every write passes through. The zero
// value is ready to use.
type Memory struct {
	mu   sync.Mutex
	beat Beat
}

var _ Fence = (*Memory)(nil)

// Admit implements Fence.
func (m *Memory) Admit(epoch uint64, now int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := check(epoch, m.beat, now); err != nil {
		return err
	}
	m.beat.Highest = epoch
	return nil
}

// Epoch implements Fence.
func (m *Memory) Epoch() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.beat.Highest
}

// Stamp implements Fence.
func (m *Memory) Stamp(epoch uint64, t int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beat.Epoch, m.beat.T = epoch, t
	m.beat.Writes++
}

// Release implements Fence.
func (m *Memory) Release(epoch uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.beat.Released = max(m.beat.Released, epoch)
}

// Beat implements Fence.
func (m *Memory) Beat() Beat {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.beat
}

// check is the fence's rule for a write of epoch at now, given the lease
// b.
func check(epoch uint64, b Beat, now int64) error {
	switch {
	case epoch == 0:
		return fmt.Errorf("%w: epoch 0 holds no lease; acquire one before driving actuators", ErrStale)
	case epoch < b.Highest:
		return fmt.Errorf("%w: epoch %d is older than %d; another instance holds the hardware", ErrStale, epoch, b.Highest)
	case epoch == b.Highest || b.Highest == 0 || b.Released >= b.Highest:
		return nil
	case b.Silent(now) < int64(HolderTimeout):
		return fmt.Errorf("%w: epoch %d wrote %.1f ms ago and has not released; epoch %d may take over once it does, or after %v of silence",
			ErrHeld, b.Highest, float64(b.Silent(now))/1e6, epoch, HolderTimeout)
	}
	return nil
}
