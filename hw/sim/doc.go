// Package sim is the virtual drone: register models of the PCA9685, MPU9250
// and BMP280 (package chips) on one I2C bus, served over a unix socket
// (package simbus), quadcopter physics in real time (package physics), and
// the referee (package referee) that logs every actuator write with its
// writer and epoch and judges flight continuity.
//
// It also carries a FLIR Lepton 2.5 thermal camera (unless Config.NoCamera,
// SIM_CAMERA=0): its command interface at I2C 0x2A and its video on SPI
// chip select 0 (SPICamera), paced at 20 MHz. Each new image (about 9 a
// second) is rendered by package scene from the truth at the frame's start:
// camera fixed to the body, looking forward, tilted 10° down; the horizon
// moves with roll and pitch as that package's doc states. The referee
// counts the frames each reader got, and CameraRender says which attitude
// an image shows. Readers should dial a bus connection of their own for the
// video (same client name), so that motor writes never wait behind it.
//
// Faults can be injected as on the hardware: corrupt camera packets
// (CorruptCamera) and I2C error bursts (StartI2CBurst, POST /faults/i2c),
// in which a share of one client's transactions, at one address or all,
// fail as a NACK for a while; I2CFaults counts what they failed.
//
// The flight app cannot tell the virtual drone from the hardware at the
// register level: it runs the same drivers over a simbus.Conn instead of
// /dev/i2c-1. The one thing the bus adds is the lease epoch on each
// transaction, so that the simulated motor controller refuses stale writers
// the way the shared-memory fence does on a Pi.
package sim
