// Package sim is the virtual drone: register models of the PCA9685, MPU9250
// and BMP280 (package chips) on one I2C bus, served over a unix socket
// (package simbus), quadcopter physics in real time (package physics), and
// the referee (package referee) that logs every actuator write with its
// writer and epoch and judges flight continuity.
//
// The flight app cannot tell the virtual drone from the hardware at the
// register level: it runs the same drivers over a simbus.Conn instead of
// /dev/i2c-1. The one thing the bus adds is the lease epoch on each
// transaction, so that the simulated motor controller refuses stale writers
// the way the shared-memory fence does on a Pi.
package sim
