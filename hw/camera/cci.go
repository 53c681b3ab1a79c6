package camera

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/lepton/cci"

	"github.com/skyswap/skyswap/hw/mono"
)

// The CCI as the Lepton's IDD defines it (periph's cci implements the same
// protocol but exports no GET for the settings Attach must check): 16-bit
// registers, big-endian, at I2C address 0x2A. A GET writes DATA_LENGTH and
// COMMAND_ID (the command's ID with the low two bits 00; SET is 01, RUN 10),
// waits for the busy bit to clear and reads DATA0 onwards.
const (
	cciAddr       = 0x2A
	regStatus     = 0x0002
	regCommandID  = 0x0004
	regDataLength = 0x0006
	regData0      = 0x0008

	bootMask = uint16(cci.StatusBootNormal | cci.StatusBooted)

	cmdAGCEnable         = 0x0100
	cmdTelemetryEnable   = 0x0218
	cmdTelemetryLocation = 0x021C

	cciPoll = 5 * time.Millisecond
	cciBusy = time.Second // a command that stays busy longer has failed
)

type regs struct{ d i2c.Dev }

func (r regs) status() (uint16, error) {
	var b [2]byte
	err := r.d.Tx([]byte{regStatus >> 8, regStatus & 0xFF}, b[:])
	return uint16(b[0])<<8 | uint16(b[1]), err
}

func (r regs) write16(reg, v uint16) error {
	return r.d.Tx([]byte{byte(reg >> 8), byte(reg), byte(v >> 8), byte(v)}, nil)
}

// waitBooted polls the status register until the camera reports a normal
// boot. The CCI may NACK while the camera boots, so errors are retried
// until ctx ends.
func (r regs) waitBooted(ctx context.Context) error {
	for {
		s, err := r.status()
		if err == nil && s&bootMask == bootMask {
			return nil
		}
		if cerr := mono.Sleep(ctx, cciPoll); cerr != nil {
			if err != nil {
				return fmt.Errorf("camera: waiting for boot: %w (last CCI read: %w)", cerr, err)
			}
			return fmt.Errorf("camera: waiting for boot: %w (CCI status %v); check the camera's power and reset lines", cerr, cci.StatusBit(s))
		}
	}
}

// waitIdle polls the status register until the busy bit clears and returns
// the status, bounded by cciBusy.
func (r regs) waitIdle() (uint16, error) {
	deadline := time.Now().Add(cciBusy)
	for {
		s, err := r.status()
		if err != nil || s&uint16(cci.StatusBusy) == 0 {
			return s, err
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("camera: CCI busy for over %v", cciBusy)
		}
		time.Sleep(cciPoll)
	}
}

// get32 runs a GET of a 2-word (32-bit) attribute. The Lepton sends the
// least significant word first, each word big-endian.
func (r regs) get32(cmd uint16) (uint32, error) {
	if _, err := r.waitIdle(); err != nil {
		return 0, err
	}
	if err := r.write16(regDataLength, 2); err != nil {
		return 0, err
	}
	if err := r.write16(regCommandID, cmd&^3); err != nil {
		return 0, err
	}
	s, err := r.waitIdle()
	if err != nil {
		return 0, err
	}
	if s&0xFF00 != 0 {
		return 0, fmt.Errorf("CCI error %d", int8(s>>8))
	}
	var b [4]byte
	if err := r.d.Tx([]byte{regData0 >> 8, regData0 & 0xFF}, b[:]); err != nil {
		return 0, err
	}
	lo := uint32(b[0])<<8 | uint32(b[1])
	hi := uint32(b[2])<<8 | uint32(b[3])
	return hi<<16 | lo, nil
}
