// Package chips holds register-level models of the chips on the virtual
// drone: the PCA9685 PWM controller that drives the ESCs, the MPU9250 IMU,
// the BMP280 barometer and the FLIR Lepton 2.5 thermal camera (its command
// interface on I2C, its video on SPI). Each model answers I2C (and SPI)
// transactions the way the real chip does, so that a driver cannot tell it
// from the hardware. What the camera sees is not the model's business: the
// virtual drone renders it (package thermal) through LeptonRender.
//
// Package chipstest has a fake clock and an I2C bus and SPI port over the
// models, to run drivers against them without the socket.
package chips
