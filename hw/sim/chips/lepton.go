package chips

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// LeptonAddr is the I2C address of the Lepton's command interface (CCI).
const LeptonAddr uint16 = 0x2A

// Lepton 2.5 geometry and timing.
const (
	LeptonWidth  = 80
	LeptonHeight = 60
	// LeptonPacketSize is one VoSPI packet: u16 ID, u16 CRC, 160 bytes.
	LeptonPacketSize = 164
	// LeptonTelemetryLines is how many packets telemetry adds to a frame.
	LeptonTelemetryLines = 3
	// LeptonFramePeriod is the VoSPI frame period (~27 Hz).
	LeptonFramePeriod = time.Second / 27
	// LeptonUniqueEvery: one frame in three carries a new image (~9 Hz);
	// the two after it repeat its pixels with fresh telemetry.
	LeptonUniqueEvery = 3
	// LeptonBootTime is how long the camera boots after power-on or a
	// reboot (periph: "takes < 1 second to boot").
	LeptonBootTime = 900 * time.Millisecond
	// LeptonFFCTime is how long a flat-field correction lasts (23 frames).
	LeptonFFCTime = 23 * LeptonFramePeriod
	// LeptonPowerDownTime is how long after an OEM power-down command the
	// camera goes off; until then it answers as before, so the command's
	// status can be read.
	LeptonPowerDownTime = 10 * time.Millisecond
)

// CCI registers: 16-bit addresses, 16-bit big-endian words.
const (
	LeptonRegPower      uint16 = 0x0000
	LeptonRegStatus     uint16 = 0x0002 // read-only
	LeptonRegCommand    uint16 = 0x0004 // writing it runs the command
	LeptonRegDataLength uint16 = 0x0006 // in 16-bit words
	LeptonRegData0      uint16 = 0x0008 // DATA0..DATA15 up to 0x0026
	LeptonRegDataCRC    uint16 = 0x0028 // read-only: CRC16 of a GET's data
	LeptonRegBuffer     uint16 = 0xF800 // block data buffers 0 and 1, to 0xFFFF
)

// Status register bits; the high byte is the last command's result, a
// LEP_RESULT as a signed byte (LeptonResult).
const (
	LeptonStatusBusy       uint16 = 1 << 0
	LeptonStatusBootNormal uint16 = 1 << 1
	LeptonStatusBooted     uint16 = 1 << 2
)

// CCI commands the model implements, as module|ID with the type bits (the
// low two) clear: add LeptonSet or LeptonRun for those types. The number
// of data words is noted beside each.
const (
	LeptonAGCEnable            uint16 = 0x0100 // 2  GET/SET: 0 off, 1 on
	LeptonSysPing              uint16 = 0x0200 // 0  RUN
	LeptonSysStatus            uint16 = 0x0204 // 4  GET: camera status u32, command count u16, reserved
	LeptonSysSerial            uint16 = 0x0208 // 4  GET: u64
	LeptonSysUptime            uint16 = 0x020C // 2  GET: ms u32
	LeptonSysHousingTemp       uint16 = 0x0210 // 1  GET: centi-kelvin
	LeptonSysFPATemp           uint16 = 0x0214 // 1  GET: centi-kelvin
	LeptonSysTelemetryEnable   uint16 = 0x0218 // 2  GET/SET: 0 off, 1 on
	LeptonSysTelemetryLocation uint16 = 0x021C // 2  GET/SET: 0 header, 1 footer
	LeptonSysFFCMode           uint16 = 0x023C // 16 GET/SET: the FFC mode object
	LeptonSysFFCRun            uint16 = 0x0240 // 0  RUN: flat-field correction
	LeptonOEMPowerDown         uint16 = 0x4800 // 0  RUN
	LeptonOEMVideoFormat       uint16 = 0x4828 // 2  GET/SET: 7 RAW14 (3 RGB888 is not modelled)
	LeptonOEMReboot            uint16 = 0x4840 // 0  RUN
)

// Command types, the low two bits of a command word.
const (
	LeptonGet uint16 = 0
	LeptonSet uint16 = 1
	LeptonRun uint16 = 2
)

// LeptonResult is a LEP_RESULT, reported in the status register's high byte.
type LeptonResult int8

// The results the model reports (values from FLIR's SDK).
const (
	LeptonOK             LeptonResult = 0
	LeptonRangeError     LeptonResult = -3 // a value out of range
	LeptonDataSizeError  LeptonResult = -6 // DATA_LENGTH does not fit the command
	LeptonUndefinedError LeptonResult = -7 // no such command (or not of that type)
	LeptonNotSupported   LeptonResult = -8 // a real feature the model does not implement
)

// Values of the video output format (LEP_OEM_VIDEO_OUTPUT_FORMAT_E).
const (
	LeptonFormatRGB888 uint32 = 3
	LeptonFormatRAW14  uint32 = 7
)

// Fixed readings of the simulated part.
const (
	LeptonSerial      uint64 = 0x0000_5EED_CAFE_0025
	LeptonFPATemp     uint16 = 30315 // 30.00 °C in centi-kelvin
	LeptonHousingTemp uint16 = 30215 // 29.00 °C
	// LeptonTelemetryRevision is word 0 of telemetry row A. It selects
	// periph's newer FFC-state encoding (0 never, 2 in progress, 3 done).
	LeptonTelemetryRevision uint16 = 9
)

// LeptonChangesConfig reports whether a command word written to the
// command register changes the camera's state: a SET, or a RUN other than
// a ping. The referee counts these while the video is being read.
func LeptonChangesConfig(cmd uint16) bool {
	switch cmd & 3 {
	case LeptonSet:
		return true
	case LeptonRun:
		return cmd&^3 != LeptonSysPing
	}
	return false
}

// LeptonRender draws the image of the unique frame with counter frame,
// which started at t (the model's Clock), into pix: LeptonWidth*LeptonHeight
// 14-bit counts, row-major, top row first, leftmost pixel first. Counts
// above 0x3FFF are masked. It is called with the model's lock held and must
// not call back into the model.
type LeptonRender func(frame uint32, t int64, pix []uint16)

// LeptonPacket says what one VoSPI packet clocked out of the model was.
type LeptonPacket struct {
	Discard bool   // a discard packet: no frame was ready; the rest is zero
	Frame   uint32 // the 27 Hz frame counter of the frame it belongs to
	Number  int    // its true packet number, 0..Count-1
	Count   int    // packets in that frame: 60, or 63 with telemetry
	Fault   LeptonFault
}

// LeptonFault is a corruption injected into VoSPI packets.
type LeptonFault int

// Faults.
const (
	LeptonNoFault  LeptonFault = iota
	LeptonFaultCRC             // the CRC field is wrong
	LeptonFaultSeq             // the packet number is wrong (the CRC matches it)
)

// ParseLeptonFault parses "crc" or "seq".
func ParseLeptonFault(s string) (LeptonFault, error) {
	switch strings.ToLower(s) {
	case "crc":
		return LeptonFaultCRC, nil
	case "seq":
		return LeptonFaultSeq, nil
	}
	return LeptonNoFault, fmt.Errorf("lepton: fault %q: want crc or seq", s)
}

func (f LeptonFault) String() string {
	switch f {
	case LeptonNoFault:
		return "none"
	case LeptonFaultCRC:
		return "crc"
	case LeptonFaultSeq:
		return "seq"
	}
	return fmt.Sprintf("LeptonFault(%d)", int(f))
}

// ErrLeptonOff is returned (wrapped in a NACK) by the CCI of a camera that
// an OEM power-down turned off.
var ErrLeptonOff = errors.New("lepton: powered down")

// Lepton models a FLIR Lepton 2.5 (80x60, radiometric) on the virtual drone:
// its command and control interface (CCI) on I2C and its video over SPI
// (VoSPI) in RAW14.
//
// # CCI
//
// Tx answers I2C transactions at LeptonAddr. A write starts with the 16-bit
// register address, big-endian, followed by whole 16-bit words written from
// there on; a read returns words from the register pointer on, without
// moving it; words past the end of a register block read as 0. Writing the
// command register runs the command with the words in DATA0..DATA15 (a
// DATA_LENGTH of at most 16) or in the block buffer at 0xF800 (longer):
// GET fills them and sets the CRC register, SET reads them, RUN takes none.
// A 32-bit value is two words, least significant first, and a 64-bit value
// four, as periph's cci decodes them. Commands complete at once: the busy bit
// is set only while the camera boots (LeptonBootTime after power-on or an
// OEM reboot), when writes are not acknowledged. The status register's high
// byte holds the last command's LeptonResult: an unknown command, a type the
// command lacks, a DATA_LENGTH that does not match and a value out of range
// each leave an error there, as on the real part. An OEM power-down turns the
// camera off LeptonPowerDownTime later: from then the CCI acknowledges
// nothing and the video reads as zeros until PowerOn. (periph's lepton.Dev
// Halt sends it: a flight app that calls Halt blinds the camera for every
// instance after it.)
//
// The commands: AGC enable; SYS ping, status, serial, uptime, FPA and
// housing temperature, telemetry enable and location, FFC mode and FFC run;
// OEM power-down, reboot and video output format (RAW14 only). An FFC lasts
// LeptonFFCTime, during which the SYS status says "flat field in process",
// telemetry says "in progress" and, with video freeze on (the default), the
// image does not change. FFC mode "auto" runs one every desired FFC period;
// the default is "external" as periph documents it, so none run unasked.
//
// # VoSPI
//
// Stream clocks bytes of the video stream. Frames start every
// LeptonFramePeriod from the end of the boot, counted by a 27 Hz frame
// counter; every LeptonUniqueEvery-th frame the model calls the LeptonRender
// for a new image, the two frames after it repeat it. A frame is 60 video
// packets (one per row), with 3 telemetry packets before them (header, the
// default with telemetry on) or after them (footer). A packet is a u16 ID
// (top nibble reserved, 0; the packet number below), a u16 CRC and 160
// bytes: row pixels as big-endian u16, or telemetry. The CRC is
// CRC-16/CCITT (x^16+x^12+x^5+1, initial 0) over the packet with the CRC
// field zeroed and the low nibble of the first byte cleared, as periph's
// lepton checks it (the datasheet clears the top nibble instead; the two
// agree on every packet number below 256). Telemetry row A carries the
// revision, uptime, status bits (FFC state, AGC), frame counter, frame mean,
// FPA and housing temperatures in centi-kelvin and the last FFC; rows B and
// C are zero.
//
// The stream is the camera's, not a reader's: every byte clocked out is
// gone, whoever clocks it. A frame's packets are ready from its start;
// once they are read, discard packets (ID 0x0F00) follow until the next
// frame starts. A reader that has not read all of a frame when the next one
// starts loses the rest of it: the next packet is packet 0 of the new frame,
// so it sees the packet number jump. A transfer may end mid-packet; the
// packet continues on the next transfer.
//
// Corrupt makes the next packets of frames (not discards) come out with a
// bad CRC or a wrong number.
//
// Time comes from the Clock given to NewLepton; the model is safe for
// concurrent use.
type Lepton struct {
	now    Clock
	render LeptonRender

	mu      sync.Mutex
	powerOn int64
	offAt   int64 // when an OEM power-down takes effect, or -1

	// CCI.
	ptr      uint16
	ptrSet   bool
	power    uint16
	command  uint16
	dataLen  uint16
	data     [16]uint16
	buf      [1024]uint16 // 0xF800..0xFFFF
	crc      uint16
	result   LeptonResult
	commands uint16 // commands run since boot

	// Configuration.
	agc       bool
	telemetry bool
	footer    bool
	format    uint32
	ffcMode   [16]uint16 // the FFC mode object as last set (elapsed time excluded)
	ffcStart  int64      // start of the last FFC, or -1
	ffcAuto   int64      // when auto FFC last ran or was armed

	// VoSPI.
	frame    int64 // 27 Hz index of the frame being streamed, or -1
	next     int   // next packet number of that frame
	pkt      [LeptonPacketSize]byte
	pktOff   int // bytes of pkt clocked out; LeptonPacketSize = none in progress
	pktInfo  LeptonPacket
	raw      [LeptonWidth * LeptonHeight]uint16
	imgFrame int64 // 27 Hz index of the unique frame raw holds, or -1
	imgMin   uint16
	imgMax   uint16
	imgMean  uint16 // of raw

	faultKind LeptonFault
	faultN    int
}

// NewLepton returns a Lepton just powered on at now(); it boots for
// LeptonBootTime. render draws each new image; nil renders a uniform 8192.
func NewLepton(now Clock, render LeptonRender) *Lepton {
	if render == nil {
		render = func(_ uint32, _ int64, pix []uint16) {
			for i := range pix {
				pix[i] = 8192
			}
		}
	}
	l := &Lepton{now: now, render: render}
	l.boot(now())
	return l
}

// boot resets the camera to its power-on defaults at t.
func (l *Lepton) boot(t int64) {
	l.powerOn, l.offAt = t, -1
	l.ptr, l.ptrSet = 0, false
	l.power, l.command, l.dataLen, l.crc, l.result, l.commands = 0, 0, 0, 0, LeptonOK, 0
	clear(l.data[:])
	clear(l.buf[:])
	l.agc, l.telemetry, l.footer, l.format = false, false, false, LeptonFormatRAW14
	l.ffcMode = defaultFFCMode()
	l.ffcStart, l.ffcAuto = -1, t
	l.frame, l.next, l.pktOff = -1, 0, LeptonPacketSize
	l.imgFrame = -1
	l.faultKind, l.faultN = LeptonNoFault, 0
}

// FFC mode object words (LEP_SYS_FFC_SHUTTER_MODE_OBJ_T), 32-bit fields as
// two words, least significant first.
const (
	ffcShutterMode   = 0  // u32: 0 manual, 1 auto, 2 external
	ffcLockout       = 2  // u32
	ffcVideoFreeze   = 4  // u32: 0 off, 1 on
	ffcDesired       = 6  // u32
	ffcElapsed       = 8  // u32 ms since the last FFC (read-only)
	ffcPeriod        = 10 // u32 ms
	ffcExplicitOpen  = 12 // u32
	ffcTempDelta     = 14 // u16 centi-kelvin
	ffcImminentDelay = 15 // u16 frames
)

func defaultFFCMode() [16]uint16 {
	var m [16]uint16
	put32(m[:], ffcShutterMode, 2)
	put32(m[:], ffcVideoFreeze, 1)
	put32(m[:], ffcPeriod, 300000)
	m[ffcTempDelta] = 300
	m[ffcImminentDelay] = 52
	return m
}

func put32(w []uint16, i int, v uint32) { w[i], w[i+1] = uint16(v), uint16(v>>16) }
func get32(w []uint16, i int) uint32    { return uint32(w[i]) | uint32(w[i+1])<<16 }

func (l *Lepton) booted(now int64) bool { return now-l.powerOn >= int64(LeptonBootTime) }

// off reports whether an OEM power-down has taken effect at now.
func (l *Lepton) off(now int64) bool { return l.offAt >= 0 && now >= l.offAt }

// PowerOn powers the camera on again after an OEM power-down (the real
// part needs its power or reset line for that) and boots it. It does
// nothing to a camera that is on.
func (l *Lepton) PowerOn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := l.now(); l.offAt >= 0 {
		l.boot(now)
	}
}

// Off reports whether an OEM power-down turned the camera off.
func (l *Lepton) Off() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.off(l.now())
}

// Corrupt makes the next n packets of frames (discard packets are not
// counted) come out with fault f, replacing any corruption still pending.
// n <= 0 or LeptonNoFault cancels it.
func (l *Lepton) Corrupt(f LeptonFault, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f == LeptonNoFault || n <= 0 {
		f, n = LeptonNoFault, 0
	}
	l.faultKind, l.faultN = f, n
}

// CorruptPending returns the fault still to be injected and into how many
// packets.
func (l *Lepton) CorruptPending() (LeptonFault, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.faultKind, l.faultN
}

// Tx implements Device: one CCI transaction.
func (l *Lepton) Tx(w, r []byte) error {
	_, err := l.TxCommands(w, r, nil)
	return err
}

// TxCommands is Tx that also appends to ran the command word of each
// command the transaction ran (whatever its result) and returns it.
func (l *Lepton) TxCommands(w, r []byte, ran []uint16) ([]uint16, error) {
	if len(w) == 0 && len(r) == 0 {
		return ran, fmt.Errorf("lepton: empty transaction: %w", ErrNACK)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.off(now) {
		return ran, fmt.Errorf("%w: %w", ErrLeptonOff, ErrNACK)
	}
	if len(w) == 1 {
		return ran, fmt.Errorf("lepton: a CCI register address is 2 bytes, got 1: %w", ErrNACK)
	}
	if len(w) >= 2 {
		reg := uint16(w[0])<<8 | uint16(w[1])
		if !leptonReg(reg) {
			return ran, fmt.Errorf("lepton: no CCI register %#04x: %w", reg, ErrNACK)
		}
		if len(w)%2 != 0 {
			return ran, fmt.Errorf("lepton: CCI registers are 16 bits; write of %d data bytes: %w", len(w)-2, ErrNACK)
		}
		if len(w) > 2 && !l.booted(now) {
			return ran, fmt.Errorf("lepton: booting, the CCI takes no writes yet: %w", ErrNACK)
		}
		l.ptr, l.ptrSet = reg, true
		a := reg
		for i := 2; i < len(w); i += 2 {
			if !leptonReg(a) || a == LeptonRegStatus || a == LeptonRegDataCRC {
				return ran, fmt.Errorf("lepton: byte %d: register %#04x is not writable: %w", i, a, ErrNACK)
			}
			v := uint16(w[i])<<8 | uint16(w[i+1])
			if a == LeptonRegCommand {
				l.exec(v, now)
				ran = append(ran, v)
			} else {
				l.writeWord(a, v)
			}
			a += 2
		}
	}
	if len(w) == 0 && !l.ptrSet {
		return ran, fmt.Errorf("lepton: read with no register pointer set: %w", ErrNACK)
	}
	a := l.ptr
	for i := 0; i < len(r); i += 2 {
		v := l.readWord(a, now)
		r[i] = byte(v >> 8)
		if i+1 < len(r) {
			r[i+1] = byte(v)
		}
		a += 2
	}
	return ran, nil
}

// leptonReg reports whether reg is a CCI register.
func leptonReg(reg uint16) bool {
	return reg%2 == 0 && (reg <= LeptonRegDataCRC || reg >= LeptonRegBuffer)
}

func (l *Lepton) writeWord(a, v uint16) {
	switch {
	case a == LeptonRegPower:
		l.power = v
	case a == LeptonRegDataLength:
		l.dataLen = v
	case a >= LeptonRegData0 && a < LeptonRegDataCRC:
		l.data[(a-LeptonRegData0)/2] = v
	case a >= LeptonRegBuffer:
		l.buf[(a-LeptonRegBuffer)/2] = v
	}
}

func (l *Lepton) readWord(a uint16, now int64) uint16 {
	switch {
	case a == LeptonRegPower:
		return l.power
	case a == LeptonRegStatus:
		if !l.booted(now) {
			return LeptonStatusBusy
		}
		return LeptonStatusBootNormal | LeptonStatusBooted | uint16(uint8(l.result))<<8
	case a == LeptonRegCommand:
		return l.command
	case a == LeptonRegDataLength:
		return l.dataLen
	case a >= LeptonRegData0 && a < LeptonRegDataCRC:
		return l.data[(a-LeptonRegData0)/2]
	case a == LeptonRegDataCRC:
		return l.crc
	case a >= LeptonRegBuffer:
		return l.buf[(a-LeptonRegBuffer)/2]
	}
	return 0 // auto-increment past a block
}

// exec runs command word cmd.
func (l *Lepton) exec(cmd uint16, now int64) {
	l.command = cmd
	l.commands++
	n := int(l.dataLen)
	var data []uint16
	switch {
	case n <= len(l.data):
		data = l.data[:n]
	case n <= len(l.buf):
		data = l.buf[:n]
	default:
		l.result = LeptonDataSizeError
		return
	}
	l.result = l.run(cmd&^3, cmd&3, data, now)
	if l.result == LeptonOK && cmd&3 == LeptonGet {
		l.crc = leptonCRC(0, wordsBytes(data))
	}
}

// run executes command id of type typ on data.
func (l *Lepton) run(id, typ uint16, data []uint16, now int64) LeptonResult {
	// getset handles a GET or SET of a value of size words.
	getset := func(size int, get func([]uint16), set func([]uint16) LeptonResult) LeptonResult {
		switch {
		case typ == LeptonGet && get != nil:
			if len(data) != size {
				return LeptonDataSizeError
			}
			clear(data)
			get(data)
			return LeptonOK
		case typ == LeptonSet && set != nil:
			if len(data) != size {
				return LeptonDataSizeError
			}
			return set(data)
		}
		return LeptonUndefinedError
	}
	flag := func(p *bool) (func([]uint16), func([]uint16) LeptonResult) {
		return func(d []uint16) {
				if *p {
					put32(d, 0, 1)
				}
			}, func(d []uint16) LeptonResult {
				switch get32(d, 0) {
				case 0:
					*p = false
				case 1:
					*p = true
				default:
					return LeptonRangeError
				}
				return LeptonOK
			}
	}
	runOnly := func(f func()) LeptonResult {
		if typ != LeptonRun {
			return LeptonUndefinedError
		}
		f()
		return LeptonOK
	}
	switch id {
	case LeptonAGCEnable:
		get, set := flag(&l.agc)
		return getset(2, get, set)
	case LeptonSysPing:
		return runOnly(func() {})
	case LeptonSysStatus:
		return getset(4, func(d []uint16) {
			status := uint32(0) // ready
			if l.ffcRunning(now) {
				status = 4 // flat field in process
			}
			put32(d, 0, status)
			d[2] = l.commands
		}, nil)
	case LeptonSysSerial:
		return getset(4, func(d []uint16) {
			serial := LeptonSerial
			put32(d, 0, uint32(serial))
			put32(d, 2, uint32(serial>>32))
		}, nil)
	case LeptonSysUptime:
		return getset(2, func(d []uint16) { put32(d, 0, uint32((now-l.powerOn)/1e6)) }, nil)
	case LeptonSysHousingTemp:
		return getset(1, func(d []uint16) { d[0] = LeptonHousingTemp }, nil)
	case LeptonSysFPATemp:
		return getset(1, func(d []uint16) { d[0] = LeptonFPATemp }, nil)
	case LeptonSysTelemetryEnable:
		get, set := flag(&l.telemetry)
		return getset(2, get, set)
	case LeptonSysTelemetryLocation:
		get, set := flag(&l.footer)
		return getset(2, get, set)
	case LeptonSysFFCMode:
		return getset(len(l.ffcMode), func(d []uint16) {
			copy(d, l.ffcMode[:])
			put32(d, ffcElapsed, uint32((now-l.lastFFC(now))/1e6))
		}, func(d []uint16) LeptonResult {
			if get32(d, ffcShutterMode) > 2 {
				return LeptonRangeError
			}
			copy(l.ffcMode[:], d)
			put32(l.ffcMode[:], ffcElapsed, 0)
			l.ffcAuto = now
			return LeptonOK
		})
	case LeptonSysFFCRun:
		return runOnly(func() { l.ffcStart = now })
	case LeptonOEMPowerDown:
		return runOnly(func() {
			if l.offAt < 0 {
				l.offAt = now + int64(LeptonPowerDownTime)
			}
		})
	case LeptonOEMReboot:
		return runOnly(func() { l.boot(now) })
	case LeptonOEMVideoFormat:
		return getset(2, func(d []uint16) { put32(d, 0, l.format) }, func(d []uint16) LeptonResult {
			switch get32(d, 0) {
			case LeptonFormatRAW14:
				return LeptonOK
			case LeptonFormatRGB888:
				return LeptonNotSupported
			}
			return LeptonRangeError
		})
	}
	return LeptonUndefinedError
}

// ffcRunning reports whether an FFC is in progress at now, starting an
// automatic one if one is due.
func (l *Lepton) ffcRunning(now int64) bool {
	if get32(l.ffcMode[:], ffcShutterMode) == 1 {
		if period := int64(get32(l.ffcMode[:], ffcPeriod)) * 1e6; period > 0 && now-l.ffcAuto >= period {
			l.ffcStart, l.ffcAuto = now, now
		}
	}
	return l.ffcStart >= 0 && now-l.ffcStart < int64(LeptonFFCTime)
}

// lastFFC returns when the last FFC completed, or the power-on time if
// none has.
func (l *Lepton) lastFFC(now int64) int64 {
	if l.ffcStart >= 0 && now-l.ffcStart >= int64(LeptonFFCTime) {
		return l.ffcStart + int64(LeptonFFCTime)
	}
	return l.powerOn
}

// ffcState is the telemetry FFC state (revision 9 encoding).
func (l *Lepton) ffcState(now int64) uint32 {
	switch {
	case l.ffcRunning(now):
		return 2
	case l.ffcStart >= 0:
		return 3
	}
	return 0
}

func wordsBytes(w []uint16) []byte {
	b := make([]byte, 2*len(w))
	for i, v := range w {
		b[2*i], b[2*i+1] = byte(v>>8), byte(v)
	}
	return b
}

// SPITx implements SPIDevice: one VoSPI transaction. The Lepton ignores
// MOSI.
func (l *Lepton) SPITx(w, r []byte) error {
	_, err := l.Stream(w, r, nil)
	return err
}

// Stream clocks max(len(w), len(r)) bytes of the video stream, copies the
// first len(r) of them into r, and appends to info what each packet whose
// last byte it clocked was.
func (l *Lepton) Stream(w, r []byte, info []LeptonPacket) ([]LeptonPacket, error) {
	n := max(len(w), len(r))
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.off(now) || !l.booted(now) {
		clear(r) // nobody drives MISO
		return info, nil
	}
	for pos := 0; pos < n; {
		if l.pktOff == LeptonPacketSize {
			l.startPacket(now)
		}
		m := min(n-pos, LeptonPacketSize-l.pktOff)
		if pos < len(r) {
			copy(r[pos:min(pos+m, len(r))], l.pkt[l.pktOff:])
		}
		l.pktOff += m
		pos += m
		if l.pktOff == LeptonPacketSize {
			info = append(info, l.pktInfo)
		}
	}
	return info, nil
}

// packetCount returns the packets in a frame.
func (l *Lepton) packetCount() int {
	if l.telemetry {
		return LeptonHeight + LeptonTelemetryLines
	}
	return LeptonHeight
}

// frameStart returns when frame k starts.
func (l *Lepton) frameStart(k int64) int64 {
	return l.powerOn + int64(LeptonBootTime) + k*int64(LeptonFramePeriod)
}

// startPacket builds the next packet of the stream at now.
func (l *Lepton) startPacket(now int64) {
	l.pktOff = 0
	k := (now - l.powerOn - int64(LeptonBootTime)) / int64(LeptonFramePeriod)
	if k != l.frame {
		l.frame, l.next = k, 0
	}
	count := l.packetCount()
	p := l.pkt[:]
	clear(p)
	if l.next >= count {
		p[0] = 0x0F
		l.pktInfo = LeptonPacket{Discard: true}
		l.sealPacket()
		return
	}
	num := l.next
	l.next++
	l.pktInfo = LeptonPacket{Frame: uint32(k), Number: num, Count: count}
	l.image(k)
	payload := p[4:]
	row := num
	if l.telemetry {
		switch {
		case !l.footer && num < LeptonTelemetryLines:
			row = -1 - num
		case !l.footer:
			row = num - LeptonTelemetryLines
		case num >= LeptonHeight:
			row = -1 - (num - LeptonHeight)
		}
	}
	switch {
	case row == -1:
		l.telemetryRowA(k, now, payload)
	case row >= 0:
		l.videoRow(row, payload)
	}
	id := num
	if l.faultN > 0 && l.faultKind == LeptonFaultSeq {
		id = (num + count/2) % count
	}
	p[0], p[1] = byte(id>>8), byte(id)
	l.sealPacket()
	if l.faultN > 0 {
		if l.faultKind == LeptonFaultCRC {
			p[2] ^= 0xFF
			p[3] ^= 0xFF
		}
		l.pktInfo.Fault = l.faultKind
		if l.faultN--; l.faultN == 0 {
			l.faultKind = LeptonNoFault
		}
	}
}

// sealPacket sets the CRC of l.pkt.
func (l *Lepton) sealPacket() {
	p := l.pkt[:]
	crc := leptonCRC(0, []byte{p[0] &^ 0x0F, p[1], 0, 0})
	crc = leptonCRC(crc, p[4:])
	p[2], p[3] = byte(crc>>8), byte(crc)
}

// image makes raw hold the image of frame k.
func (l *Lepton) image(k int64) {
	u := k - k%LeptonUniqueEvery
	if u == l.imgFrame {
		return
	}
	start := l.frameStart(u)
	frozen := l.imgFrame >= 0 && get32(l.ffcMode[:], ffcVideoFreeze) == 1 && l.ffcRunning(start)
	l.imgFrame = u
	if frozen {
		return
	}
	l.render(uint32(u), start, l.raw[:])
	lo, hi, sum := uint16(math.MaxUint16), uint16(0), 0
	for i, v := range l.raw {
		v &= 0x3FFF
		l.raw[i] = v
		lo, hi, sum = min(lo, v), max(hi, v), sum+int(v)
	}
	l.imgMin, l.imgMax, l.imgMean = lo, hi, uint16(sum/len(l.raw))
}

// pixel returns the output value of raw count v: the count itself, or with
// AGC on a linear stretch of the image's range to 0..255.
func (l *Lepton) pixel(v uint16) uint16 {
	if !l.agc {
		return v
	}
	if l.imgMax == l.imgMin {
		return 128
	}
	return uint16((uint32(v-l.imgMin)*255 + uint32(l.imgMax-l.imgMin)/2) / uint32(l.imgMax-l.imgMin))
}

func (l *Lepton) videoRow(row int, payload []byte) {
	for x, v := range l.raw[row*LeptonWidth : (row+1)*LeptonWidth] {
		v = l.pixel(v)
		payload[2*x], payload[2*x+1] = byte(v>>8), byte(v)
	}
}

// Telemetry row A word offsets (32-bit values least significant word
// first).
const (
	telRevision     = 0
	telUptime       = 1 // u32 ms
	telStatus       = 3 // u32
	telFrameCounter = 20
	telFrameMean    = 22
	telFPACounts    = 23
	telFPATemp      = 24
	telHousingCnts  = 25
	telHousingTemp  = 26
	telFPATempFFC   = 29
	telTimeFFC      = 30 // u32 ms
	telHousingFFC   = 32
	telAGCROI       = 34 // left, top, right, bottom as periph reads them
	telAGCClipHigh  = 38
	telAGCClipLow   = 39
	telLog2FFC      = 74
)

// Telemetry status bits.
const (
	telStatusFFCShift = 4
	telStatusAGC      = 1 << 12
)

func (l *Lepton) telemetryRowA(k int64, now int64, payload []byte) {
	var w [LeptonWidth]uint16
	start := l.frameStart(k)
	w[telRevision] = LeptonTelemetryRevision
	put32(w[:], telUptime, uint32((start-l.powerOn)/1e6))
	status := l.ffcState(now) << telStatusFFCShift
	if l.agc {
		status |= telStatusAGC
	}
	put32(w[:], telStatus, status)
	put32(w[:], telFrameCounter, uint32(k))
	mean := l.imgMean
	if l.agc {
		mean = l.pixel(mean)
	}
	w[telFrameMean] = mean
	w[telFPACounts] = 0x1D3A
	w[telFPATemp] = LeptonFPATemp
	w[telHousingCnts] = 0x1C20
	w[telHousingTemp] = LeptonHousingTemp
	if l.ffcStart >= 0 {
		w[telFPATempFFC] = LeptonFPATemp
		w[telHousingFFC] = LeptonHousingTemp
		put32(w[:], telTimeFFC, uint32((l.lastFFC(now)-l.powerOn)/1e6))
	}
	w[telAGCROI+2] = LeptonWidth - 1
	w[telAGCROI+3] = LeptonHeight - 1
	w[telAGCClipHigh] = 4800
	w[telAGCClipLow] = 512
	w[telLog2FFC] = 3
	for i, v := range w {
		payload[2*i], payload[2*i+1] = byte(v>>8), byte(v)
	}
}

// leptonCRCTable is CRC-16/CCITT (polynomial 0x1021, not reflected).
var leptonCRCTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// leptonCRC continues CRC-16/CCITT crc over p (start with 0).
func leptonCRC(crc uint16, p []byte) uint16 {
	for _, v := range p {
		crc = leptonCRCTable[byte(crc>>8)^v] ^ crc<<8
	}
	return crc
}
