package chips

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/camera/cameratest"
)

// renderLog is a LeptonRender that draws a distinct image per unique frame
// (pixel i of frame f is 1000 + 10·f + i%80) and records its calls.
type renderLog struct {
	calls []renderCall
}

type renderCall struct {
	frame uint32
	t     int64
}

func (g *renderLog) render(frame uint32, t int64, pix []uint16) {
	g.calls = append(g.calls, renderCall{frame, t})
	for i := range pix {
		pix[i] = uint16(1000 + 10*int(frame) + i%LeptonWidth)
	}
}

// bootedLepton returns a Lepton past its boot, at the start of frame 0.
func bootedLepton(t *testing.T) (*Lepton, *fakeClock, *renderLog) {
	t.Helper()
	clk, now := newFakeClock()
	g := &renderLog{}
	l := NewLepton(now, g.render)
	clk.Advance(LeptonBootTime)
	return l, clk, g
}

// packetID returns a packet's number (ID without the reserved nibble).
func packetID(p []byte) int { return int(p[0]&0x0F)<<8 | int(p[1]) }

// readPackets clocks n whole packets and returns them with their info.
func readPackets(t *testing.T, l *Lepton, n int) ([][]byte, []LeptonPacket) {
	t.Helper()
	buf := make([]byte, n*LeptonPacketSize)
	info, err := l.Stream(nil, buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(info) != n {
		t.Fatalf("Stream of %d packets reported %d", n, len(info))
	}
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = buf[i*LeptonPacketSize : (i+1)*LeptonPacketSize]
	}
	return ps, info
}

// cci runs a command through the registers as periph's cci does and
// returns the result and the data words.
func cci(t *testing.T, l *Lepton, cmd uint16, data []uint16) (LeptonResult, []uint16) {
	t.Helper()
	if cmd&3 == LeptonSet {
		w := []byte{byte(LeptonRegData0 >> 8), byte(LeptonRegData0)}
		for _, v := range data {
			w = append(w, byte(v>>8), byte(v))
		}
		mustTx(t, l, w, nil)
	}
	mustTx(t, l, []byte{0, byte(LeptonRegDataLength), byte(len(data) >> 8), byte(len(data))}, nil)
	mustTx(t, l, []byte{0, byte(LeptonRegCommand), byte(cmd >> 8), byte(cmd)}, nil)
	var st [2]byte
	mustTx(t, l, []byte{0, byte(LeptonRegStatus)}, st[:])
	if st[1]&byte(LeptonStatusBusy) != 0 {
		t.Fatalf("command %#04x left the camera busy", cmd)
	}
	out := make([]uint16, len(data))
	if cmd&3 == LeptonGet && len(data) > 0 {
		b := make([]byte, 2*len(data))
		mustTx(t, l, []byte{byte(LeptonRegData0 >> 8), byte(LeptonRegData0)}, b)
		for i := range out {
			out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
	}
	return LeptonResult(int8(st[0])), out
}

func status(t *testing.T, l *Lepton) uint16 {
	t.Helper()
	var b [2]byte
	mustTx(t, l, []byte{0, byte(LeptonRegStatus)}, b[:])
	return uint16(b[0])<<8 | uint16(b[1])
}

func TestLeptonBoot(t *testing.T) {
	clk, now := newFakeClock()
	l := NewLepton(now, nil)
	if s := status(t, l); s != LeptonStatusBusy {
		t.Fatalf("status while booting = %#04x, want busy", s)
	}
	if err := l.Tx([]byte{0, byte(LeptonRegCommand), 0x02, 0x04}, nil); !errors.Is(err, ErrNACK) {
		t.Fatalf("command while booting: %v, want NACK", err)
	}
	buf := make([]byte, LeptonPacketSize)
	if info, _ := l.Stream(nil, buf, nil); len(info) != 0 || buf[0] != 0 {
		t.Fatalf("video while booting: % x %+v, want nothing", buf[:4], info)
	}
	clk.Advance(LeptonBootTime)
	if s := status(t, l); s != LeptonStatusBootNormal|LeptonStatusBooted {
		t.Fatalf("status after boot = %#04x, want boot normal | booted", s)
	}
}

func TestLeptonCCI(t *testing.T) {
	l, clk, _ := bootedLepton(t)
	clk.Advance(1234 * time.Millisecond)
	for _, tc := range []struct {
		name string
		cmd  uint16
		in   []uint16
		res  LeptonResult
		want []uint16
	}{
		{"status", LeptonSysStatus, make([]uint16, 4), LeptonOK, []uint16{0, 0, 1, 0}},
		{"serial", LeptonSysSerial, make([]uint16, 4), LeptonOK, []uint16{0x0025, 0xCAFE, 0x5EED, 0}},
		{"uptime", LeptonSysUptime, make([]uint16, 2), LeptonOK, []uint16{2134, 0}},
		{"fpa temp", LeptonSysFPATemp, make([]uint16, 1), LeptonOK, []uint16{LeptonFPATemp}},
		{"housing temp", LeptonSysHousingTemp, make([]uint16, 1), LeptonOK, []uint16{LeptonHousingTemp}},
		{"agc default off", LeptonAGCEnable, make([]uint16, 2), LeptonOK, []uint16{0, 0}},
		{"agc on", LeptonAGCEnable | LeptonSet, []uint16{1, 0}, LeptonOK, nil},
		{"agc reads on", LeptonAGCEnable, make([]uint16, 2), LeptonOK, []uint16{1, 0}},
		{"agc off", LeptonAGCEnable | LeptonSet, []uint16{0, 0}, LeptonOK, nil},
		{"telemetry on", LeptonSysTelemetryEnable | LeptonSet, []uint16{1, 0}, LeptonOK, nil},
		{"telemetry reads on", LeptonSysTelemetryEnable, make([]uint16, 2), LeptonOK, []uint16{1, 0}},
		{"telemetry footer", LeptonSysTelemetryLocation | LeptonSet, []uint16{1, 0}, LeptonOK, nil},
		{"telemetry reads footer", LeptonSysTelemetryLocation, make([]uint16, 2), LeptonOK, []uint16{1, 0}},
		{"telemetry header", LeptonSysTelemetryLocation | LeptonSet, []uint16{0, 0}, LeptonOK, nil},
		{"format raw14", LeptonOEMVideoFormat, make([]uint16, 2), LeptonOK, []uint16{7, 0}},
		{"format set raw14", LeptonOEMVideoFormat | LeptonSet, []uint16{7, 0}, LeptonOK, nil},
		{"format rgb888 not modelled", LeptonOEMVideoFormat | LeptonSet, []uint16{3, 0}, LeptonNotSupported, nil},
		{"format out of range", LeptonOEMVideoFormat | LeptonSet, []uint16{99, 0}, LeptonRangeError, nil},
		{"telemetry flag out of range", LeptonSysTelemetryEnable | LeptonSet, []uint16{2, 0}, LeptonRangeError, nil},
		{"ping", LeptonSysPing | LeptonRun, nil, LeptonOK, nil},
		{"unknown command", 0x0A00, make([]uint16, 2), LeptonUndefinedError, nil},
		{"set of a get-only command", LeptonSysSerial | LeptonSet, make([]uint16, 4), LeptonUndefinedError, nil},
		{"run of a get/set command", LeptonAGCEnable | LeptonRun, nil, LeptonUndefinedError, nil},
		{"get with the wrong length", LeptonSysUptime, make([]uint16, 3), LeptonDataSizeError, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, got := cci(t, l, tc.cmd, tc.in)
			if res != tc.res {
				t.Fatalf("result %d, want %d", res, tc.res)
			}
			if tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("data %v, want %v", got, tc.want)
			}
			if s := status(t, l); LeptonResult(int8(s>>8)) != tc.res || s&0xFF != LeptonStatusBootNormal|LeptonStatusBooted {
				t.Fatalf("status %#04x, want result %d in the high byte", s, tc.res)
			}
		})
	}
	t.Run("data CRC", func(t *testing.T) {
		cci(t, l, LeptonSysSerial, make([]uint16, 4))
		var b [2]byte
		mustTx(t, l, []byte{0, byte(LeptonRegDataCRC)}, b[:])
		want := leptonCRC(0, []byte{0x00, 0x25, 0xCA, 0xFE, 0x5E, 0xED, 0, 0})
		if got := uint16(b[0])<<8 | uint16(b[1]); got != want {
			t.Fatalf("CRC register %#04x, want %#04x", got, want)
		}
	})
	t.Run("block buffer", func(t *testing.T) {
		// A DATA_LENGTH over 16 words moves the data through 0xF800.
		mustTx(t, l, []byte{0xF8, 0x00, 0, 1, 0, 0}, nil)
		mustTx(t, l, []byte{0, byte(LeptonRegDataLength), 0, 17}, nil)
		mustTx(t, l, []byte{0, byte(LeptonRegCommand), 0x02, 0x19}, nil)
		if res := LeptonResult(int8(status(t, l) >> 8)); res != LeptonDataSizeError {
			t.Fatalf("17-word telemetry SET: result %d, want data size error", res)
		}
		var b [4]byte
		mustTx(t, l, []byte{0xF8, 0x00}, b[:])
		if b != [4]byte{0, 1, 0, 0} {
			t.Fatalf("buffer reads % x", b)
		}
	})
}

func TestLeptonCCINACK(t *testing.T) {
	mk := func() Device {
		clk, now := newFakeClock()
		l := NewLepton(now, nil)
		clk.Advance(LeptonBootTime)
		return l
	}
	testNACK(t, mk, []nackCase{
		{"empty", nil, 0},
		{"one address byte", []byte{0x00}, 2},
		{"odd address", []byte{0x00, 0x03}, 2},
		{"hole in the map", []byte{0x00, 0x2A}, 2},
		{"odd data", []byte{0x00, 0x06, 0x00}, 0},
		{"write status", []byte{0x00, 0x02, 0x00, 0x00}, 0},
		{"write CRC", []byte{0x00, 0x28, 0x00, 0x00}, 0},
		{"write past data15 into CRC", []byte{0x00, 0x26, 0, 0, 0, 0}, 0},
		{"read with no pointer", nil, 2},
	})
}

func TestLeptonPowerDown(t *testing.T) {
	l, clk, _ := bootedLepton(t)
	mustTx(t, l, []byte{0, byte(LeptonRegDataLength), 0, 0}, nil)
	ran, err := l.TxCommands([]byte{0, byte(LeptonRegCommand), 0x48, 0x02}, nil, nil)
	if err != nil || len(ran) != 1 || ran[0] != LeptonOEMPowerDown|LeptonRun {
		t.Fatalf("power down: ran %#04x, %v", ran, err)
	}
	if l.Off() || status(t, l)&0xFF00 != 0 {
		t.Fatal("off before LeptonPowerDownTime, or the command's result is an error")
	}
	clk.Advance(LeptonPowerDownTime)
	if !l.Off() {
		t.Fatal("not off after power down")
	}
	var b [2]byte
	if err := l.Tx([]byte{0, byte(LeptonRegStatus)}, b[:]); !errors.Is(err, ErrLeptonOff) || !errors.Is(err, ErrNACK) {
		t.Fatalf("CCI of a camera that is off: %v, want a NACK wrapping ErrLeptonOff", err)
	}
	buf := make([]byte, 2*LeptonPacketSize)
	if info, _ := l.Stream(nil, buf, nil); len(info) != 0 || buf[0]|buf[1]|buf[2] != 0 {
		t.Fatalf("video of a camera that is off: % x %+v", buf[:4], info)
	}
	l.PowerOn()
	if s := status(t, l); s != LeptonStatusBusy {
		t.Fatalf("status after PowerOn = %#04x, want booting", s)
	}
	clk.Advance(LeptonBootTime)
	if s := status(t, l); s != LeptonStatusBootNormal|LeptonStatusBooted {
		t.Fatalf("status after the boot = %#04x", s)
	}
}

func TestLeptonRebootRestoresDefaults(t *testing.T) {
	l, clk, _ := bootedLepton(t)
	cci(t, l, LeptonSysTelemetryEnable|LeptonSet, []uint16{1, 0})
	cci(t, l, LeptonAGCEnable|LeptonSet, []uint16{1, 0})
	mustTx(t, l, []byte{0, byte(LeptonRegDataLength), 0, 0}, nil)
	mustTx(t, l, []byte{0, byte(LeptonRegCommand), 0x48, 0x42}, nil)
	if s := status(t, l); s != LeptonStatusBusy {
		t.Fatalf("status right after reboot = %#04x, want booting", s)
	}
	clk.Advance(LeptonBootTime)
	if _, d := cci(t, l, LeptonSysTelemetryEnable, make([]uint16, 2)); d[0] != 0 {
		t.Fatal("telemetry still on after reboot")
	}
	if _, d := cci(t, l, LeptonAGCEnable, make([]uint16, 2)); d[0] != 0 {
		t.Fatal("AGC still on after reboot")
	}
	if _, d := cci(t, l, LeptonSysUptime, make([]uint16, 2)); d[0] != uint16(LeptonBootTime/time.Millisecond) {
		t.Fatalf("uptime after reboot %d ms, want it counted from the reboot", d[0])
	}
}

func TestLeptonFFC(t *testing.T) {
	l, clk, _ := bootedLepton(t)
	cci(t, l, LeptonSysTelemetryEnable|LeptonSet, []uint16{1, 0})
	_, mode := cci(t, l, LeptonSysFFCMode, make([]uint16, 16))
	if get32(mode, ffcShutterMode) != 2 || get32(mode, ffcPeriod) != 300000 || mode[ffcTempDelta] != 300 || get32(mode, ffcVideoFreeze) != 1 {
		t.Fatalf("default FFC mode %v", mode)
	}
	ffcState := func() uint32 {
		ps, _ := readPackets(t, l, 1)
		if packetID(ps[0]) != 0 {
			t.Fatalf("expected telemetry packet 0, got %d", packetID(ps[0]))
		}
		p := ps[0][4:]
		s := uint32(p[2*telStatus])<<8 | uint32(p[2*telStatus+1])
		return s >> telStatusFFCShift & 3
	}
	if s := ffcState(); s != 0 {
		t.Fatalf("FFC state before any FFC = %d, want 0 (never)", s)
	}
	if res, _ := cci(t, l, LeptonSysFFCRun|LeptonRun, nil); res != LeptonOK {
		t.Fatal(res)
	}
	clk.Advance(LeptonFramePeriod)
	if s := ffcState(); s != 2 {
		t.Fatalf("FFC state during the FFC = %d, want 2 (in progress)", s)
	}
	if _, st := cci(t, l, LeptonSysStatus, make([]uint16, 4)); st[0] != 4 {
		t.Fatalf("camera status during FFC = %d, want 4 (flat field in process)", st[0])
	}
	clk.Advance(LeptonFFCTime)
	if s := ffcState(); s != 3 {
		t.Fatalf("FFC state after the FFC = %d, want 3 (complete)", s)
	}
	// Auto mode with a 1 s period runs one by itself.
	put32(mode, ffcShutterMode, 1)
	put32(mode, ffcPeriod, 1000)
	if res, _ := cci(t, l, LeptonSysFFCMode|LeptonSet, mode); res != LeptonOK {
		t.Fatal(res)
	}
	clk.Advance(time.Second)
	if _, st := cci(t, l, LeptonSysStatus, make([]uint16, 4)); st[0] != 4 {
		t.Fatalf("camera status 1 s into auto mode = %d, want an FFC in process", st[0])
	}
	put32(mode, ffcShutterMode, 3)
	if res, _ := cci(t, l, LeptonSysFFCMode|LeptonSet, mode); res != LeptonRangeError {
		t.Fatalf("shutter mode 3: result %d, want range error", res)
	}
}

func TestLeptonVoSPIPackets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		telemetry bool
		footer    bool
		count     int
		rowA      int // packet number of telemetry row A, or -1
		firstRow  int // packet number of image row 0
	}{
		{"no telemetry", false, false, 60, -1, 0},
		{"telemetry header", true, false, 63, 0, 3},
		{"telemetry footer", true, true, 63, 60, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, clk, g := bootedLepton(t)
			if tc.telemetry {
				cci(t, l, LeptonSysTelemetryEnable|LeptonSet, []uint16{1, 0})
			}
			if tc.footer {
				cci(t, l, LeptonSysTelemetryLocation|LeptonSet, []uint16{1, 0})
			}
			clk.Advance(5 * LeptonFramePeriod) // frame 5: its image is frame 3's
			ps, info := readPackets(t, l, tc.count+2)
			for i, p := range ps[:tc.count] {
				if packetID(p) != i || p[0]&0xF0 != 0 || !cameratest.PeriphCRCOK(p) {
					t.Fatalf("packet %d: ID %#04x, CRC ok %v", i, uint16(p[0])<<8|uint16(p[1]), cameratest.PeriphCRCOK(p))
				}
				if info[i] != (LeptonPacket{Frame: 5, Number: i, Count: tc.count}) {
					t.Fatalf("packet %d info %+v", i, info[i])
				}
			}
			for i, p := range ps[tc.count:] {
				if p[0]&0x0F != 0x0F || !info[tc.count+i].Discard {
					t.Fatalf("packet after the frame: ID %#02x%02x info %+v, want a discard", p[0], p[1], info[tc.count+i])
				}
			}
			if len(g.calls) != 1 || g.calls[0].frame != 3 || g.calls[0].t != int64(LeptonBootTime+3*LeptonFramePeriod) {
				t.Fatalf("renders %+v, want one of frame 3 at its start", g.calls)
			}
			row0 := ps[tc.firstRow][4:]
			if got := uint16(row0[2])<<8 | uint16(row0[3]); got != 1000+30+1 {
				t.Fatalf("pixel (1, 0) = %d, want %d", got, 1031)
			}
			if tc.rowA >= 0 {
				a := ps[tc.rowA][4:]
				word := func(i int) uint16 { return uint16(a[2*i])<<8 | uint16(a[2*i+1]) }
				if word(telRevision) != LeptonTelemetryRevision || word(telFrameCounter) != 5 || word(telFPATemp) != LeptonFPATemp {
					t.Fatalf("row A: revision %d, frame %d, FPA %d", word(telRevision), word(telFrameCounter), word(telFPATemp))
				}
				wantUp := uint16((LeptonBootTime + 5*LeptonFramePeriod) / time.Millisecond)
				if word(telUptime) != wantUp {
					t.Fatalf("row A uptime %d ms, want %d", word(telUptime), wantUp)
				}
				if word(telFrameMean) != 1030+39 {
					t.Fatalf("row A frame mean %d, want %d", word(telFrameMean), 1030+39)
				}
			}
		})
	}
}

// TestLeptonTiming drives the clock frame by frame: a new frame every
// LeptonFramePeriod, a new image every third.
func TestLeptonTiming(t *testing.T) {
	l, clk, g := bootedLepton(t)
	cci(t, l, LeptonSysTelemetryEnable|LeptonSet, []uint16{1, 0})
	var frames []uint32
	for range 9 {
		_, info := readPackets(t, l, 63)
		frames = append(frames, info[0].Frame)
		clk.Advance(LeptonFramePeriod)
	}
	if fmt.Sprint(frames) != "[0 1 2 3 4 5 6 7 8]" {
		t.Fatalf("frame counters %v", frames)
	}
	var rendered []uint32
	for _, c := range g.calls {
		rendered = append(rendered, c.frame)
	}
	if fmt.Sprint(rendered) != "[0 3 6]" {
		t.Fatalf("rendered %v, want a new image every third frame", rendered)
	}
	if fps := float64(time.Second) / float64(LeptonFramePeriod); fps < 26.9 || fps > 27.1 {
		t.Fatalf("%.2f frames/s", fps)
	}
}

// TestLeptonSlowReader: a reader still inside a frame when the next one
// starts gets packet 0 of the new frame next; a transfer may end
// mid-packet.
func TestLeptonSlowReader(t *testing.T) {
	l, clk, _ := bootedLepton(t)
	cci(t, l, LeptonSysTelemetryEnable|LeptonSet, []uint16{1, 0})
	_, info := readPackets(t, l, 30)
	if info[29].Number != 29 {
		t.Fatal(info[29])
	}
	// Half a packet, then the next frame starts.
	half := make([]byte, LeptonPacketSize/2)
	if info, _ := l.Stream(nil, half, nil); len(info) != 0 || packetID(half) != 30 {
		t.Fatalf("half packet: ID %d, info %+v", packetID(half), info)
	}
	clk.Advance(LeptonFramePeriod)
	rest := make([]byte, LeptonPacketSize/2+LeptonPacketSize)
	info, _ = l.Stream(nil, rest, nil)
	if len(info) != 2 || info[0].Number != 30 || info[0].Frame != 0 {
		t.Fatalf("the packet in progress finishes first: %+v", info)
	}
	whole := append(half, rest[:LeptonPacketSize/2]...)
	if !cameratest.PeriphCRCOK(whole) {
		t.Fatal("a packet split over two transfers has a bad CRC")
	}
	if info[1].Frame != 1 || info[1].Number != 0 || packetID(rest[LeptonPacketSize/2:]) != 0 {
		t.Fatalf("after the frame boundary: %+v, want packet 0 of frame 1", info[1])
	}
	// Reading nothing for two frames skips them entirely.
	clk.Advance(2 * LeptonFramePeriod)
	_, info = readPackets(t, l, 1)
	if info[0].Frame != 3 || info[0].Number != 0 {
		t.Fatalf("after two idle frames: %+v, want packet 0 of frame 3", info[0])
	}
}

func TestLeptonCorrupt(t *testing.T) {
	for _, f := range []LeptonFault{LeptonFaultCRC, LeptonFaultSeq} {
		t.Run(f.String(), func(t *testing.T) {
			l, clk, _ := bootedLepton(t)
			cci(t, l, LeptonSysTelemetryEnable|LeptonSet, []uint16{1, 0})
			readPackets(t, l, 63) // frame 0 read: discards until frame 1
			const n = 5
			l.Corrupt(f, n)
			readPackets(t, l, 10) // discards do not use up the corruption
			if k, left := l.CorruptPending(); k != f || left != n {
				t.Fatalf("pending %v %d after discards", k, left)
			}
			clk.Advance(LeptonFramePeriod)
			ps, info := readPackets(t, l, 63)
			bad := 0
			for i, p := range ps {
				crcBad, seqBad := !cameratest.PeriphCRCOK(p), packetID(p) != i
				if crcBad || seqBad {
					bad++
					if (f == LeptonFaultCRC) != crcBad || (f == LeptonFaultSeq) != seqBad {
						t.Fatalf("packet %d: bad CRC %v, bad number %v, for fault %v", i, crcBad, seqBad, f)
					}
					if info[i].Fault != f || info[i].Number != i {
						t.Fatalf("packet %d info %+v", i, info[i])
					}
				} else if info[i].Fault != LeptonNoFault {
					t.Fatalf("packet %d is clean but reported %v", i, info[i].Fault)
				}
			}
			if bad != n {
				t.Fatalf("%d bad packets, want %d", bad, n)
			}
			if k, left := l.CorruptPending(); k != LeptonNoFault || left != 0 {
				t.Fatalf("pending %v %d after injection", k, left)
			}
		})
	}
	if _, err := ParseLeptonFault("bits"); err == nil {
		t.Fatal("ParseLeptonFault accepted bits")
	}
}

func TestLeptonAGC(t *testing.T) {
	l, _, _ := bootedLepton(t)
	cci(t, l, LeptonAGCEnable|LeptonSet, []uint16{1, 0})
	ps, _ := readPackets(t, l, 60)
	row := ps[0][4:]
	first := uint16(row[0])<<8 | uint16(row[1])
	last := uint16(row[158])<<8 | uint16(row[159])
	if first != 0 || last != 255 {
		t.Fatalf("AGC row spans %d..%d, want 0..255", first, last)
	}
}

func FuzzLeptonCCI(f *testing.F) {
	f.Add([]byte{0x20, 0x00, 0x06, 0x00, 0x04, 0x24, 0x00, 0x04, 0x02, 0x04, 0x80, 0x00, 0x08})
	f.Add([]byte{0x10, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk, now := newFakeClock()
		l := NewLepton(now, nil)
		clk.Advance(LeptonBootTime)
		fuzzTx(t, l, data, func() {
			clk.Advance(time.Millisecond)
			buf := make([]byte, 3*LeptonPacketSize)
			if _, err := l.Stream(nil, buf, nil); err != nil {
				t.Fatal(err)
			}
		})
	})
}
