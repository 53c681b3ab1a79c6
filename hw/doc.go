// Package hw is the root of the drone's hardware layer. Drivers live in the
// sub-packages (motors, imu, baro), take a periph i2c.Bus and never open one;
// package bus opens the bus once from configuration, either the Pi's
// /dev/i2c-1 or the virtual drone's socket (package sim).
package hw
