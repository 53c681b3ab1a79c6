package chips

import "errors"

// I2C addresses of the chips on the virtual drone.
const (
	// PCA9685Addr is the address of the PWM controller (all address pins low).
	PCA9685Addr uint16 = 0x40
	// MPU9250Addr is the address of the IMU (AD0 low).
	MPU9250Addr uint16 = 0x68
	// BMP280Addr is the address of the barometer (SDO low).
	BMP280Addr uint16 = 0x76
)

// The thermal camera's CCI is at LeptonAddr (0x2A); its video is SPI chip
// select 0.

// ErrNACK is returned (wrapped, with a message saying what was wrong) for a
// transaction the chip would not acknowledge: an unknown or reserved
// register, a write to a read-only register, an empty write, a read with no
// register pointer set, etc.
var ErrNACK = errors.New("i2c: NACK")

// Device is one I2C target on the simulated bus.
//
// Tx performs one combined transaction: write w (first byte = register
// pointer, rest = data written with the chip's auto-increment rules), then,
// if len(r) > 0, read len(r) bytes from the (possibly just set) register
// pointer (repeated start). w may be empty only when r is non-empty (read
// from the current pointer). Tx must be safe for concurrent use.
//
// A target cannot NACK bytes it sends, so once the register pointer has been
// acknowledged a read always completes; bytes read from reserved addresses
// reached by auto-increment read as 0.
type Device interface {
	Tx(w, r []byte) error
}

// Clock returns the current time in nanoseconds on a monotonic clock. Models
// take it in their constructor so tests can drive time by hand.
type Clock func() int64

// SPIDevice is one SPI target on its chip select.
//
// SPITx performs one transaction, one chip-select assertion, full duplex:
// max(len(w), len(r)) bytes are clocked; w is what the master sends (zeros
// past its end) and r receives the first len(r) bytes the target sends
// back. SPITx must be safe for concurrent use.
type SPIDevice interface {
	SPITx(w, r []byte) error
}
