package lease

import (
	"sync/atomic"

	"periph.io/x/conn/v3/i2c"

	"github.com/skyswap/skyswap/hw/mono"
)

// Fenced wraps a bus that knows nothing of epochs (a Pi's /dev/i2c-1) as
// the actuators' view of it: every write through it, whatever the address,
// is first admitted by f and stamped into f's heartbeat once it reached the
// chip. A write is a transaction that carries data past the register
// pointer; reads (pointer write, then read) are never fenced. The fence is
// a property of the view, not of a list of addresses: an actuator driver
// takes a Bus (as package motors does), so one added later is fenced on
// the day it is written. Sensors use the bus itself.
func Fenced(bus i2c.BusCloser, f Fence) Bus {
	return &fenced{BusCloser: bus, fence: f}
}

type fenced struct {
	i2c.BusCloser
	fence Fence
	epoch atomic.Uint64
}

func (b *fenced) SetEpoch(epoch uint64) { b.epoch.Store(epoch) }

func (b *fenced) Tx(addr uint16, w, r []byte) error {
	if !IsWrite(w) {
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

// IsWrite reports whether a transaction writing w writes to the device
// (data beyond the register pointer), which the fence must admit.
func IsWrite(w []byte) bool { return len(w) >= 2 }
