// Package leasetest gives tests the actuators' view of a plain bus (a
// periph i2ctest.Record or Playback), as actuator drivers take it: fenced
// by a lease in memory that this test's writer holds.
package leasetest

import (
	"periph.io/x/conn/v3/i2c"

	"github.com/skyswap/skyswap/hw/lease"
)

// Bus is b fenced by a new in-memory lease, writing with epoch 1 (the
// lease's first holder). Close closes nothing.
func Bus(b i2c.Bus) lease.Bus {
	f := lease.Fenced(nopCloser{b}, &lease.Memory{})
	f.SetEpoch(1)
	return f
}

type nopCloser struct{ i2c.Bus }

func (nopCloser) Close() error { return nil }
