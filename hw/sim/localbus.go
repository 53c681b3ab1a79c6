package sim

import (
	"sync/atomic"

	"periph.io/x/conn/v3/physic"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// localBus is an in-process lease.Bus on the virtual drone.
type localBus struct {
	d     *Drone
	c     simbus.Client
	epoch atomic.Uint64
}

func (b *localBus) Tx(addr uint16, w, r []byte) error {
	return b.d.Tx(b.c, addr, b.epoch.Load(), w, r)
}
func (b *localBus) SetEpoch(e uint64)               { b.epoch.Store(e) }
func (b *localBus) SetSpeed(physic.Frequency) error { return nil }
func (b *localBus) String() string                  { return "sim-local#" + b.c.Name }
func (b *localBus) Close() error                    { return nil }

func (b *localBus) Beat() (lease.Beat, error) { return b.d.Lease(b.c, 0) }

func (b *localBus) Release(epoch uint64) error {
	_, err := b.d.Lease(b.c, epoch)
	return err
}
