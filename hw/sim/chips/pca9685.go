package chips

import (
	"fmt"
	"sync"
	"time"
)

// PCA9685 register addresses.
const (
	PCA9685Mode1      byte = 0x00 // MODE1
	PCA9685Mode2      byte = 0x01 // MODE2
	PCA9685SubAdr1    byte = 0x02 // SUBADR1
	PCA9685SubAdr2    byte = 0x03 // SUBADR2
	PCA9685SubAdr3    byte = 0x04 // SUBADR3
	PCA9685AllCallAdr byte = 0x05 // ALLCALLADR
	PCA9685LED0OnL    byte = 0x06 // LED0_ON_L; channel n starts at 0x06+4n
	PCA9685LED15OffH  byte = 0x45 // LED15_OFF_H, the last channel register
	PCA9685AllLEDOnL  byte = 0xFA // ALL_LED_ON_L
	PCA9685AllLEDOffH byte = 0xFD // ALL_LED_OFF_H
	PCA9685Prescale   byte = 0xFE // PRE_SCALE
	PCA9685TestMode   byte = 0xFF // TestMode
)

// PCA9685 MODE1, MODE2 and LEDn_xx_H bits.
const (
	PCA9685Restart byte = 0x80 // MODE1: restart pending (read), restart (write 1)
	PCA9685ExtClk  byte = 0x40 // MODE1: external clock, sticky until reset
	PCA9685AI      byte = 0x20 // MODE1: register auto-increment
	PCA9685Sleep   byte = 0x10 // MODE1: oscillator off
	PCA9685AllCall byte = 0x01 // MODE1: respond to the ALLCALL address
	PCA9685Invrt   byte = 0x10 // MODE2: invert outputs
	PCA9685OCH     byte = 0x08 // MODE2: outputs change on ACK instead of STOP
	PCA9685OutDrv  byte = 0x04 // MODE2: totem pole outputs
	PCA9685Full    byte = 0x10 // LEDn_ON_H full on / LEDn_OFF_H full off
)

// PCA9685Channels is the number of PWM channels of the chip.
const PCA9685Channels = 16

// PCA9685OscStartup is how long the internal oscillator needs after SLEEP is
// cleared before the outputs run.
const PCA9685OscStartup = 500 * time.Microsecond

// pca9685Tick is one period of the 25 MHz internal oscillator.
const pca9685Tick = 40 * time.Nanosecond

// Pulse is what an ESC sees on one channel: the high time of each period and
// the period. Present is false when there is no pulse train (oscillator
// asleep or still stabilising, duty 0% or 100%, i.e. a constant level); Width
// and Period are then zero.
type Pulse struct {
	Width, Period time.Duration
	Present       bool
}

// PCA9685Channel holds the raw register counts of one channel: the 12-bit ON
// and OFF counts and the full-on (LEDn_ON_H bit 4) and full-off (LEDn_OFF_H
// bit 4) flags.
type PCA9685Channel struct {
	On, Off         uint16
	FullOn, FullOff bool
}

// PCA9685 models the NXP PCA9685 16-channel 12-bit PWM controller.
//
// The model answers only on its own address: the sub-addresses, ALLCALL and
// the general-call software reset are left to the bus. Since Tx is atomic,
// the OCH setting (outputs change on STOP or on ACK) makes no visible
// difference. Any write to a channel or ALL_LED register clears a pending
// RESTART (the datasheet lists this for OCH=0; the model applies it for OCH=1
// as well). Per the Device contract a read before any register pointer was
// written is NACKed, although the real control register powers up at MODE1.
type PCA9685 struct {
	now Clock

	mu       sync.Mutex
	ptr      byte // register pointer (the datasheet's control register)
	ptrSet   bool // a register pointer has been written since power-on
	mode1    byte // MODE1 without the RESTART bit
	restart  bool // MODE1 RESTART: PWM was halted by SLEEP
	mode2    byte
	subadr   [3]byte
	allcall  byte
	led      [PCA9685Channels][4]byte // ON_L, ON_H, OFF_L, OFF_H
	prescale byte
	wakeAt   int64 // when SLEEP was last cleared
}

// NewPCA9685 returns a PCA9685 in its power-on state: MODE1=0x11 (SLEEP,
// ALLCALL), MODE2=0x04, PRE_SCALE=0x1E, every channel full off, SUBADR1-3 =
// 0xE2, 0xE4, 0xE8 and ALLCALLADR = 0xE0.
func NewPCA9685(now Clock) *PCA9685 {
	p := &PCA9685{
		now:      now,
		mode1:    PCA9685Sleep | PCA9685AllCall,
		mode2:    PCA9685OutDrv,
		subadr:   [3]byte{0xE2, 0xE4, 0xE8},
		allcall:  0xE0,
		prescale: 0x1E,
	}
	for i := range p.led {
		p.led[i][3] = PCA9685Full
	}
	return p
}

// pca9685Valid reports whether reg exists (is acknowledged).
func pca9685Valid(reg byte) bool {
	return reg <= PCA9685LED15OffH || reg >= PCA9685AllLEDOnL
}

// pca9685Next is the auto-increment rule: 0x00..0x45 roll over to 0x00 and
// 0xFA..0xFE roll over to 0x00 (datasheet table 4 remark).
func pca9685Next(reg byte) byte {
	if reg == PCA9685LED15OffH || reg >= PCA9685Prescale {
		return 0
	}
	return reg + 1
}

// Tx implements Device.
func (p *PCA9685) Tx(w, r []byte) error {
	if len(w) == 0 && len(r) == 0 {
		return fmt.Errorf("pca9685: empty transaction: %w", ErrNACK)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if len(w) > 0 {
		if !pca9685Valid(w[0]) {
			return fmt.Errorf("pca9685: reserved register %#02x: %w", w[0], ErrNACK)
		}
		p.ptr, p.ptrSet = w[0], true
		for i, v := range w[1:] {
			if err := p.write(p.ptr, v, now); err != nil {
				return fmt.Errorf("pca9685: data byte %d: %w", i, err)
			}
			p.advance()
		}
	} else if !p.ptrSet {
		return fmt.Errorf("pca9685: read with no register pointer set: %w", ErrNACK)
	}
	for i := range r {
		r[i] = p.read(p.ptr)
		p.advance()
	}
	return nil
}

func (p *PCA9685) advance() {
	if p.mode1&PCA9685AI != 0 {
		p.ptr = pca9685Next(p.ptr)
	}
}

func (p *PCA9685) read(reg byte) byte {
	switch {
	case reg == PCA9685Mode1:
		if p.restart {
			return p.mode1 | PCA9685Restart
		}
		return p.mode1
	case reg == PCA9685Mode2:
		return p.mode2
	case reg >= PCA9685SubAdr1 && reg <= PCA9685SubAdr3:
		return p.subadr[reg-PCA9685SubAdr1]
	case reg == PCA9685AllCallAdr:
		return p.allcall
	case reg >= PCA9685LED0OnL && reg <= PCA9685LED15OffH:
		n := reg - PCA9685LED0OnL
		return p.led[n/4][n%4]
	case reg == PCA9685Prescale:
		return p.prescale
	}
	return 0 // ALL_LED_* and TestMode read as zero.
}

func (p *PCA9685) write(reg, v byte, now int64) error {
	switch {
	case reg == PCA9685Mode1:
		p.writeMode1(v, now)
	case reg == PCA9685Mode2:
		p.mode2 = v & 0x1F // bits 7:5 are reserved, read-only 0
	case reg >= PCA9685SubAdr1 && reg <= PCA9685SubAdr3:
		p.subadr[reg-PCA9685SubAdr1] = v
	case reg == PCA9685AllCallAdr:
		p.allcall = v
	case reg >= PCA9685LED0OnL && reg <= PCA9685LED15OffH:
		n := reg - PCA9685LED0OnL
		p.led[n/4][n%4] = ledByte(n%4, v)
		p.restart = false
	case reg >= PCA9685AllLEDOnL && reg <= PCA9685AllLEDOffH:
		n := reg - PCA9685AllLEDOnL
		for ch := range p.led {
			p.led[ch][n] = ledByte(n, v)
		}
		p.restart = false
	case reg == PCA9685Prescale:
		// Writes are blocked while the oscillator runs.
		if p.mode1&PCA9685Sleep != 0 {
			p.prescale = max(v, 3)
		}
	default:
		return fmt.Errorf("register %#02x is not writable: %w", reg, ErrNACK)
	}
	return nil
}

// ledByte masks the reserved bits 7:5 of the _H registers.
func ledByte(n, v byte) byte {
	if n%2 == 1 {
		return v & 0x1F
	}
	return v
}

// writeMode1 applies a MODE1 write: RESTART is cleared by writing 1, set
// when SLEEP stops running PWM outputs; EXTCLK is sticky; clearing SLEEP
// starts the oscillator.
func (p *PCA9685) writeMode1(v byte, now int64) {
	asleep := p.mode1&PCA9685Sleep != 0
	if v&PCA9685Restart != 0 {
		p.restart = false
	}
	switch {
	case !asleep && v&PCA9685Sleep != 0:
		if p.outputsOn(now) && p.anyActive() {
			p.restart = true
		}
	case asleep && v&PCA9685Sleep == 0:
		p.wakeAt = now
	}
	p.mode1 = v&^(PCA9685Restart|PCA9685ExtClk) | (v|p.mode1)&PCA9685ExtClk
}

// outputsOn reports whether the PWM engine runs: awake, oscillator stable
// and no restart pending.
func (p *PCA9685) outputsOn(now int64) bool {
	return p.mode1&PCA9685Sleep == 0 &&
		now-p.wakeAt >= int64(PCA9685OscStartup) &&
		!p.restart
}

// anyActive reports whether some channel would drive its output high.
func (p *PCA9685) anyActive() bool {
	for ch := range p.led {
		if p.highCounts(ch) > 0 {
			return true
		}
	}
	return false
}

// channel decodes the registers of one channel.
func (p *PCA9685) channel(ch int) PCA9685Channel {
	l := p.led[ch]
	return PCA9685Channel{
		On:      uint16(l[1]&0x0F)<<8 | uint16(l[0]),
		Off:     uint16(l[3]&0x0F)<<8 | uint16(l[2]),
		FullOn:  l[1]&PCA9685Full != 0,
		FullOff: l[3]&PCA9685Full != 0,
	}
}

// highCounts returns the number of oscillator counts (0..4096) per period
// the non-inverted output of ch is high.
func (p *PCA9685) highCounts(ch int) int {
	c := p.channel(ch)
	switch {
	case c.FullOff:
		return 0
	case c.FullOn:
		return 4096
	}
	return int(c.Off-c.On) & 0xFFF // ON == OFF gives 0%
}

// Pulse returns the pulse train on channel ch (0..15) now.
func (p *PCA9685) Pulse(ch int) Pulse {
	if ch < 0 || ch >= PCA9685Channels {
		return Pulse{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.outputsOn(p.now()) {
		return Pulse{}
	}
	high := p.highCounts(ch)
	if p.mode2&PCA9685Invrt != 0 {
		high = 4096 - high
	}
	if high == 0 || high == 4096 {
		return Pulse{}
	}
	tick := (time.Duration(p.prescale) + 1) * pca9685Tick
	return Pulse{Width: time.Duration(high) * tick, Period: 4096 * tick, Present: true}
}

// Channels returns the raw register counts of channels [0,n), n clamped to
// [0,16].
func (p *PCA9685) Channels(n int) []PCA9685Channel {
	n = min(max(n, 0), PCA9685Channels)
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PCA9685Channel, n)
	for ch := range out {
		out[ch] = p.channel(ch)
	}
	return out
}

// PCA9685WritesOutputs reports whether the write transaction w (w[0] =
// register, len(w) > 1) touches a channel register of channels 0..3 or an
// ALL_LED register, assuming MODE1.AI is set.
func PCA9685WritesOutputs(w []byte) bool {
	if len(w) < 2 || !pca9685Valid(w[0]) {
		return false
	}
	const last = PCA9685LED0OnL + 4*4 - 1 // LED3_OFF_H
	reg := w[0]
	for range w[1:] {
		switch {
		case reg >= PCA9685LED0OnL && reg <= last,
			reg >= PCA9685AllLEDOnL && reg <= PCA9685AllLEDOffH:
			return true
		case reg == PCA9685TestMode:
			return false // NACKed: the rest is not written
		}
		reg = pca9685Next(reg)
	}
	return false
}
