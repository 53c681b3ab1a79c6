package lease

import (
	"sync/atomic"

	"periph.io/x/conn/v3/i2c"

	"github.com/skyswap/skyswap/hw/mono"
)

// Fenced wraps a bus that knows nothing of epochs (a Pi's /dev/i2c-1) so that
// every write to one of the actuator addresses is first admitted by f, and
// stamped into f's heartbeat once it reached the chip. A write is a
// transaction that carries data past the register pointer; reads (pointer
// write, then read) are never fenced.
func Fenced(bus i2c.BusCloser, f Fence, actuators ...uint16) Bus {
	return &fenced{BusCloser: bus, fence: f, actuators: actuators}
}

type fenced struct {
	i2c.BusCloser
	fence     Fence
	actuators []uint16
	epoch     atomic.Uint64
}

func (b *fenced) SetEpoch(epoch uint64) { b.epoch.Store(epoch) }

func (b *fenced) Tx(addr uint16, w, r []byte) error {
	if !IsActuatorWrite(addr, w, b.actuators) {
		return b.BusCloser.Tx(addr, w, r)
	}
	epoch := b.epoch.Load()
	if err := b.fence.Admit(epoch, mono.Now()); err != nil {
		return err
	}
	if err := b.BusCloser.Tx(addr, w, r); err != nil {
		return err
	}
	b.fence.Stamp(epoch, mono.Now())
	return nil
}

func (b *fenced) Beat() (Beat, error) { return b.fence.Beat(), nil }

func (b *fenced) Release(epoch uint64) error {
	b.fence.Release(epoch)
	return nil
}

// IsActuatorWrite reports whether a transaction to addr writing w is a write
// that the fence must admit: data beyond the register pointer, to one of the
// actuator addresses.
func IsActuatorWrite(addr uint16, w []byte, actuators []uint16) bool {
	if len(w) < 2 {
		return false
	}
	for _, a := range actuators {
		if a == addr {
			return true
		}
	}
	return false
}
