// Package lease is the hardware write lease with a fencing epoch.
//
// Exactly one process may drive the actuators at a time: the holder of the
// current epoch. Epochs only grow. The thing being written (the virtual
// drone's bus, or on a Pi a word in shared memory checked before every
// actuator write) remembers the highest epoch it has seen and refuses any write
// that carries a lower one: a stale holder is shut out, not merely asked to
// stop. This is the classic fencing token: the hand-over coordinator gives the
// candidate epoch E+1, and the candidate's first write fences the old owner.
//
// Epoch 0 means "no lease": a process with epoch 0 may read sensors but every
// actuator write it makes is refused.
package lease

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
)

// ErrStale is the class of errors for an actuator write refused because its
// epoch is older than the newest one the fence has seen (or is 0).
var ErrStale = errors.New("lease: stale epoch")

// Bus is an I2C bus whose actuator writes carry the writer's lease epoch.
// Drivers see a plain i2c.Bus; the application sets the epoch it holds.
type Bus interface {
	i2c.BusCloser
	// SetEpoch sets the epoch carried by subsequent writes. 0 = no lease.
	SetEpoch(epoch uint64)
}

// Fence admits or refuses writes by epoch.
type Fence interface {
	// Admit returns an error wrapping ErrStale if epoch is 0 or lower than
	// the highest epoch admitted so far; otherwise it records epoch as the
	// highest and returns nil.
	Admit(epoch uint64) error
	// Epoch returns the highest epoch admitted so far.
	Epoch() uint64
}

// Memory is a Fence held in process memory. The virtual drone uses it: the
// simulated bus is the single place every write passes through. The zero
// value is ready to use.
type Memory struct {
	mu      sync.Mutex
	highest uint64
}

var _ Fence = (*Memory)(nil)

// Admit implements Fence.
func (m *Memory) Admit(epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := check(epoch, m.highest); err != nil {
		return err
	}
	m.highest = epoch
	return nil
}

// Epoch implements Fence.
func (m *Memory) Epoch() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.highest
}

func check(epoch, highest uint64) error {
	if epoch == 0 {
		return fmt.Errorf("%w: epoch 0 holds no lease; acquire one before driving actuators", ErrStale)
	}
	if epoch < highest {
		return fmt.Errorf("%w: epoch %d is older than %d; another instance holds the hardware", ErrStale, epoch, highest)
	}
	return nil
}
