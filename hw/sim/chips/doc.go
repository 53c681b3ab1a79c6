// Package chips holds register-level models of the chips on the virtual
// drone: the PCA9685 PWM controller that drives the ESCs, the MPU9250 IMU and
// the BMP280 barometer. Each model answers I2C transactions the way the real
// chip does, so that a driver cannot tell it from the hardware.
package chips
