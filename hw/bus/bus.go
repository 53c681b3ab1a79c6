// Package bus opens the drone's I2C bus once, from configuration: the Pi's
// /dev/i2c-N through periph's host drivers, or the virtual drone's socket.
// Everything above it sees two views of it and cannot tell which bus is
// under them: the sensors' (an i2c.Bus) and the actuators' (a lease.Bus,
// every write fenced). OpenSPI does the same for the camera's SPI port.
package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

// DefaultLeaseFile is the shared-memory lease on a Pi.
const DefaultLeaseFile = "/dev/shm/skyswap-lease"

// Config says which bus to open.
type Config struct {
	// Spec is "sim:PATH" for the virtual drone's unix socket at PATH, or a
	// Linux I2C bus: "/dev/i2c-1" or "1". Required.
	Spec string
	// Name identifies this process as a writer (the referee's log names
	// it); required for the simulator, informational on a Pi.
	Name string
	// LeaseFile is the shared-memory word that fences actuator writes on a
	// Pi. Empty = DefaultLeaseFile. Unused in simulation, where the
	// virtual drone's bus fences.
	LeaseFile string
}

// Buses are the two views of the drone's I2C bus.
type Buses struct {
	// Sensors is for the sensor drivers (IMU, barometer, the camera's
	// CCI): reads, and the configuration writes of a cold start.
	Sensors i2c.Bus
	// Actuators is for the actuator drivers (the motors, and any added
	// later): every write through it is admitted by the lease's fence,
	// whatever its address, and it carries the lease itself (the epoch
	// written with, the heartbeat, the release).
	Actuators lease.Bus
}

// Close closes the bus.
func (b *Buses) Close() error { return b.Actuators.Close() }

// Open opens the bus described by cfg.
func Open(ctx context.Context, cfg Config) (*Buses, error) {
	if path, ok := strings.CutPrefix(cfg.Spec, "sim:"); ok {
		// The virtual drone fences at its chips, with the epoch every
		// transaction of the connection carries.
		c, err := dialSim(ctx, path, cfg.Name)
		if err != nil {
			return nil, err
		}
		return &Buses{Sensors: c, Actuators: c}, nil
	}
	name := strings.TrimPrefix(cfg.Spec, "/dev/i2c-")
	if name == "" {
		return nil, fmt.Errorf("bus: no bus given; use /dev/i2c-1 on a Pi or sim:/path/to/drone-sim.sock")
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("bus: periph host init: %w", err)
	}
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("bus: open I2C bus %q: %w (is i2c enabled: dtparam=i2c_arm=on, and /dev/i2c-%s passed to the container?)", cfg.Spec, err, name)
	}
	f, err := lease.OpenShm(cmp.Or(cfg.LeaseFile, DefaultLeaseFile))
	if err != nil {
		b.Close()
		return nil, err
	}
	return views(b, f), nil
}

// views are the sensors' and the actuators' views of a bus that knows
// nothing of epochs, fenced by f.
func views(b i2c.BusCloser, f lease.Fence) *Buses {
	return &Buses{Sensors: b, Actuators: lease.Fenced(b, f)}
}

// LeaseReader is the lease as an observer reads it (the agent's
// coordinator): the heartbeat, never a write.
type LeaseReader interface {
	lease.Reader
	Close() error
}

// OpenLease opens the motors' lease for reading: spec "sim:PATH" is the
// virtual drone's fence over its socket (a connection named name), anything
// else the shared-memory lease file on a Pi ("" = DefaultLeaseFile).
func OpenLease(ctx context.Context, spec, name string) (LeaseReader, error) {
	if path, ok := strings.CutPrefix(spec, "sim:"); ok {
		return dialSim(ctx, path, name)
	}
	s, err := lease.OpenShm(cmp.Or(spec, DefaultLeaseFile))
	if err != nil {
		return nil, err
	}
	return shmReader{s}, nil
}

// dialSim connects to the virtual drone's socket at path (from "sim:PATH").
func dialSim(ctx context.Context, path, name string) (*simbus.Conn, error) {
	if path == "" {
		return nil, errors.New("bus: sim: names no socket; use sim:/path/to/drone-sim.sock")
	}
	return simbus.Dial(ctx, path, name)
}

type shmReader struct{ *lease.Shm }

func (r shmReader) Beat() (lease.Beat, error) { return r.Shm.Beat(), nil }

// OpenSPI opens the camera's SPI port: "sim:PATH" is the virtual drone's
// socket (a connection of its own, named name, so video reads never queue
// behind the control loop's I2C), anything else a Linux spidev such as
// "/dev/spidev0.0" through periph's host drivers.
func OpenSPI(ctx context.Context, spec, name string) (spi.PortCloser, error) {
	if path, ok := strings.CutPrefix(spec, "sim:"); ok {
		if path == "" {
			return nil, fmt.Errorf("bus: %q names no socket; use sim:/path/to/drone-sim.sock", spec)
		}
		c, err := simbus.Dial(ctx, path, name)
		if err != nil {
			return nil, err
		}
		return simSPI{c.SPIPort(0), c}, nil
	}
	if spec == "" {
		return nil, fmt.Errorf("bus: no SPI port given; use /dev/spidev0.0 on a Pi or sim:/path/to/drone-sim.sock")
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("bus: periph host init: %w", err)
	}
	p, err := spireg.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("bus: open SPI port %q: %w (is SPI enabled: dtparam=spi=on, and the device passed to the container?)", spec, err)
	}
	return p, nil
}

// simSPI is the simulator's SPI port on a connection of its own: closing
// the port closes the connection.
type simSPI struct {
	spi.PortCloser
	c *simbus.Conn
}

func (p simSPI) Close() error { return errors.Join(p.PortCloser.Close(), p.c.Close()) }
