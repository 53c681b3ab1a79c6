package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/lepton"
	"periph.io/x/devices/v3/lepton/cci"
	"periph.io/x/devices/v3/lepton/image14bit"

	"github.com/skyswap/skyswap/hw/camera/cameratest"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/chips"
	"github.com/skyswap/skyswap/hw/sim/physics"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/hw/sim/scene"
	"github.com/skyswap/skyswap/hw/sim/simbus"
)

const degree = math.Pi / 180

// hovering returns a drone whose physics does not run, held at 2 m above
// the take-off point with the given attitude (degrees): what the camera
// sees is exactly that pose.
func hovering(roll, pitch float64) *sim.Drone {
	return sim.New(sim.Config{Physics: physics.Config{Start: physics.Start{
		Pos: [3]float64{0, 0, 2}, Roll: roll * degree, Pitch: pitch * degree,
	}}})
}

// openLepton opens periph's lepton driver on the drone's socket the way a
// flight app should: CCI on one connection, video on another, both under
// name.
func openLepton(t *testing.T, path, name string) *lepton.Dev {
	t.Helper()
	bus := dial(t, path, name)
	video := dial(t, path, name)
	dev, err := lepton.New(video.SPIPort(sim.SPICamera), bus)
	if err != nil {
		t.Fatalf("lepton.New: %v", err)
	}
	return dev
}

func newFrame() *lepton.Frame {
	return &lepton.Frame{Gray14: image14bit.NewGray14(image.Rect(0, 0, chips.LeptonWidth, chips.LeptonHeight))}
}

// groundFrom returns the first row of column col that is warmer than the
// sky, or the height if none is.
func groundFrom(f *lepton.Frame, col int) int {
	for row := range chips.LeptonHeight {
		if f.Intensity14At(col, row) > (scene.Sky+scene.Ground)/2 {
			return row
		}
	}
	return chips.LeptonHeight
}

// TestPeriphLeptonOverSocket runs periph's own lepton driver against the
// virtual drone over a real socket: New boots and configures the camera
// (three SETs), NextFrame returns a frame whose telemetry parses and whose
// image is the view from 2 m: sky above ground, the warm target ahead. The
// referee credits the reader's name with the frames, and the frame's
// render says which attitude it shows.
func TestPeriphLeptonOverSocket(t *testing.T) {
	d := hovering(0, 0)
	path := serve(t, d)
	dev := openLepton(t, path, "flight-v2")
	if s, err := dev.GetSerial(); err != nil || s != chips.LeptonSerial {
		t.Fatalf("GetSerial = %#x, %v", s, err)
	}
	f := newFrame()
	if err := dev.NextFrame(f); err != nil {
		t.Fatal(err)
	}
	m := f.Metadata
	if m.Temp.Celsius() < 29.9 || m.Temp.Celsius() > 30.1 || m.SinceStartup < chips.LeptonBootTime || m.FFCState != cci.FFCNever {
		t.Fatalf("telemetry %+v", m)
	}
	// Sky above the horizon (row 15), ground below, the target at rows
	// 43..55 in the middle columns.
	for _, tc := range []struct {
		name     string
		col, row int
		lo, hi   int
	}{
		{"sky top left", 0, 0, 7450, 7750},
		{"sky above the horizon", 40, 14, 7650, 7750},
		{"ground below the horizon", 40, 16, 8150, 8230},
		{"ground bottom left", 0, 59, 8180, 8270},
		{"target", 40, 50, 9780, 9820},
	} {
		if v := int(f.Intensity14At(tc.col, tc.row)); v < tc.lo || v > tc.hi {
			t.Errorf("%s (%d, %d) = %d counts, want %d..%d", tc.name, tc.col, tc.row, v, tc.lo, tc.hi)
		}
	}
	for col := range chips.LeptonWidth {
		if r := groundFrom(f, col); r != 15 {
			t.Fatalf("column %d turns to ground at row %d, want 15 (level)", col, r)
		}
	}
	rd, ok := d.CameraRender(m.FrameCount)
	if !ok || rd.RollDeg != 0 || rd.PitchDeg != 0 || rd.AltM != 2 || rd.Image > m.FrameCount || m.FrameCount-rd.Image > 2 {
		t.Fatalf("CameraRender(%d) = %+v, %v; want level at 2 m, rendered at most 2 frames before", m.FrameCount, rd, ok)
	}
	rep := d.CameraReport(0, 0)
	if got := rep.Readers["flight-v2"]; got.Frames < 1 || got.Packets < 63 || len(rep.Readers) != 1 {
		t.Fatalf("camera report readers %+v, want flight-v2 credited with its frames", rep.Readers)
	}
	if rep.ConfigWhileStreaming != 0 || len(rep.ConfigCommands) != 3 {
		t.Fatalf("config commands %+v: want periph's three SETs, none while streaming", rep.ConfigCommands)
	}
}

// TestCameraHorizonFollowsAttitude holds the drone at an attitude and
// checks the frame periph reads against package scene's convention.
func TestCameraHorizonFollowsAttitude(t *testing.T) {
	for _, tc := range []struct {
		name        string
		roll, pitch float64
		check       func(left, centre, right int) bool
		want        string
	}{
		{"roll +10 (left side up)", 10, 0, func(l, c, r int) bool { return l > c && c > r }, "low on the left, high on the right"},
		{"roll -10", -10, 0, func(l, c, r int) bool { return l < c && c < r }, "high on the left, low on the right"},
		{"pitch +5 (nose down)", 0, 5, func(l, c, r int) bool { return l == r && c < 15 }, "level, above row 15"},
		{"pitch -5 (nose up)", 0, -5, func(l, c, r int) bool { return l == r && c > 15 }, "level, below row 15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := hovering(tc.roll, tc.pitch)
			path := serve(t, d)
			dev := openLepton(t, path, "viewer")
			f := newFrame()
			if err := dev.NextFrame(f); err != nil {
				t.Fatal(err)
			}
			l, c, r := groundFrom(f, 0), groundFrom(f, 40), groundFrom(f, 79)
			if !tc.check(l, c, r) {
				t.Fatalf("ground starts at rows %d (left), %d (centre), %d (right); want the horizon %s", l, c, r, tc.want)
			}
			rd, ok := d.CameraRender(f.Metadata.FrameCount)
			if !ok || math.Abs(rd.RollDeg-tc.roll) > 1e-9 || math.Abs(rd.PitchDeg-tc.pitch) > 1e-9 {
				t.Fatalf("CameraRender = %+v, want roll %v pitch %v", rd, tc.roll, tc.pitch)
			}
		})
	}
}

// rawVideo connects a plain SPI reader to the camera.
func rawVideo(t *testing.T, path, name string) spi.Conn {
	t.Helper()
	sc, err := dial(t, path, name).SPIPort(sim.SPICamera).Connect(20*physic.MegaHertz, spi.Mode3, 8)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// stream reads 24-packet transfers until it has seen n packets that are not
// discards (or 5 s pass) and returns those packets.
func stream(t *testing.T, sc spi.Conn, n int) [][]byte {
	t.Helper()
	buf := make([]byte, 24*chips.LeptonPacketSize)
	var got [][]byte
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d video packets in 5 s", len(got))
		}
		if err := sc.Tx(nil, buf); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(buf); i += chips.LeptonPacketSize {
			if p := buf[i : i+chips.LeptonPacketSize]; p[0]&0x0F != 0x0F {
				got = append(got, append([]byte(nil), p...))
			}
		}
	}
	return got
}

// waitBooted polls the camera's status until it has booted.
func waitBooted(t *testing.T, bus *simbus.Conn) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool {
		var b [2]byte
		err := bus.Tx(sim.AddrLepton, []byte{0, 2}, b[:])
		return err == nil && b[1]&6 == 6
	}) {
		t.Fatal("the camera did not boot in 5 s")
	}
}

// TestCameraCorruptAndReferee drives the camera's fault injection and the
// referee's camera figures through the HTTP endpoints: a corruption of N
// packets makes exactly N bad packets on the wire and in the report, and a
// second instance configuring the camera while the first reads it is
// counted as configuration while streaming.
func TestCameraCorruptAndReferee(t *testing.T) {
	d := hovering(0, 0)
	path := serve(t, d)
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	post := func(t *testing.T, q string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/camera/corrupt?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	getJSON := func(t *testing.T, p string, v any) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}

	bus := dial(t, path, "v1")
	waitBooted(t, bus)
	video := rawVideo(t, path, "v1")
	stream(t, video, 60) // telemetry is off: frames of 60

	for _, tc := range []struct {
		query  string
		status int
		body   string
	}{
		{"kind=crc&n=5", 200, `{"kind":"crc","n":5}`},
		{"kind=bits&n=5", 400, "crc or seq"},
		{"kind=seq&n=0", 400, "n="},
		{"kind=seq", 400, "n="},
	} {
		if status, body := post(t, tc.query); status != tc.status || !strings.Contains(body, tc.body) {
			t.Fatalf("POST /camera/corrupt?%s: %d %q, want %d with %q", tc.query, status, body, tc.status, tc.body)
		}
	}
	bad := 0
	for _, p := range stream(t, video, 3*60) {
		if !cameratest.PeriphCRCOK(p) {
			bad++
		}
	}
	if bad != 5 {
		t.Fatalf("%d packets with a bad CRC after kind=crc&n=5, want 5", bad)
	}
	if status, _ := post(t, "kind=seq&n=7"); status != 200 {
		t.Fatal(status)
	}
	stream(t, video, 3*60)

	// v2 configures the camera (periph's Init: three SETs) while v1 reads.
	stop, done := make(chan struct{}), make(chan error)
	go func() {
		buf := make([]byte, 24*chips.LeptonPacketSize)
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := video.Tx(nil, buf); err != nil {
				done <- err
				return
			}
		}
	}()
	stopReading := func() error { close(stop); return <-done }
	v2 := dial(t, path, "v2")
	c, err := cci.New(v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(); err != nil {
		t.Fatal(err)
	}
	if err := stopReading(); err != nil {
		t.Fatal(err)
	}
	var rep referee.CameraReport
	getJSON(t, "/camera?last=1m", &rep)
	if rep.Corrupt != 12 || rep.Readers["v1"].Corrupt != 12 || rep.Readers["v1"].Frames < 3 {
		t.Fatalf("report: corrupt %d, readers %+v; want 12 corrupt packets (5 crc + 7 seq) and v1's frames", rep.Corrupt, rep.Readers)
	}
	if rep.ConfigWhileStreaming != 3 || len(rep.ConfigCommands) != 3 || rep.ConfigCommands[0].Writer != "v2" {
		t.Fatalf("config commands %+v (%d while streaming), want v2's three SETs while v1 streams", rep.ConfigCommands, rep.ConfigWhileStreaming)
	}
	var frames []referee.CameraFrame
	getJSON(t, "/camera/frames", &frames)
	if len(frames) != rep.Frames || frames[0].Reader != "v1" || frames[0].AltM != 2 || frames[0].RenderT == 0 {
		t.Fatalf("frames %+v, want the %d frames of the report with what they show", frames, rep.Frames)
	}

	// Without a camera: no device on the bus, a 404 for faults.
	off := sim.New(sim.Config{NoCamera: true})
	offPath := serve(t, off)
	if err := dial(t, offPath, "x").Tx(sim.AddrLepton, []byte{0, 2}, make([]byte, 2)); !errors.Is(err, simbus.ErrNACK) {
		t.Fatalf("CCI without a camera: %v, want a NACK", err)
	}
	sc, err := dial(t, offPath, "x").SPIPort(sim.SPICamera).Connect(0, spi.Mode3, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Tx(nil, make([]byte, 164)); !errors.Is(err, simbus.ErrNACK) {
		t.Fatalf("video without a camera: %v, want a NACK", err)
	}
	offSrv := httptest.NewServer(off.Handler())
	t.Cleanup(offSrv.Close)
	resp, err := offSrv.Client().Post(offSrv.URL+"/camera/corrupt?kind=crc&n=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("corrupt without a camera: %d, want 404", resp.StatusCode)
	}
}

func TestCameraSetting(t *testing.T) {
	for _, tc := range []struct {
		env    string
		noCam  bool
		failed bool
	}{
		{"", false, false},
		{"1", false, false},
		{"0", true, false},
		{"maybe", false, true},
	} {
		s, err := sim.LoadSettings(func(k string) string {
			if k == "SIM_CAMERA" {
				return tc.env
			}
			return ""
		})
		if (err != nil) != tc.failed || s.NoCamera != tc.noCam || s.Config().NoCamera != tc.noCam {
			t.Errorf("SIM_CAMERA=%q: NoCamera %v, err %v", tc.env, s.NoCamera, err)
		}
	}
}

// BenchmarkCameraNextFrame reads frames with periph's driver over the
// socket: ns/op is the time per new image, and the metrics are the rates
// the referee saw (all frames, 27 Hz nominal) and the new images.
func BenchmarkCameraNextFrame(b *testing.B) {
	d := hovering(0, 0)
	path := serveB(b, d)
	bus, err := simbus.Dial(context.Background(), path, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	video, err := simbus.Dial(context.Background(), path, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer video.Close()
	dev, err := lepton.New(video.SPIPort(sim.SPICamera), bus)
	if err != nil {
		b.Fatal(err)
	}
	f := newFrame()
	if err := dev.NextFrame(f); err != nil {
		b.Fatal(err)
	}
	start := mono.Now()
	n := 0
	for b.Loop() {
		if err := dev.NextFrame(f); err != nil {
			b.Fatal(err)
		}
		n++
	}
	end := mono.Now()
	secs := float64(end-start) / 1e9
	b.ReportMetric(float64(n)/secs, "images/s")
	b.ReportMetric(float64(d.CameraReport(start, end).Frames)/secs, "frames/s")
}

// BenchmarkCameraFrameRead is the time to clock one whole frame (63
// packets, in transfers of 24 as periph does) out of the camera over the
// socket, paced at 20 MHz.
func BenchmarkCameraFrameRead(b *testing.B) {
	d := hovering(0, 0)
	path := serveB(b, d)
	c, err := simbus.Dial(context.Background(), path, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sc, err := c.SPIPort(sim.SPICamera).Connect(0, spi.Mode3, 8)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 24*chips.LeptonPacketSize)
	for b.Loop() {
		for _, n := range []int{24, 24, 15} {
			if err := sc.Tx(nil, buf[:n*chips.LeptonPacketSize]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// serveB serves d's bus for a benchmark and waits for the camera to boot.
func serveB(b *testing.B, d *sim.Drone) string {
	b.Helper()
	path := b.TempDir() + "/sim.sock"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, path) }()
	b.Cleanup(func() { cancel(); <-done })
	for i := 0; ; i++ {
		c, err := simbus.Dial(context.Background(), path, "probe")
		if err == nil {
			c.Close()
			break
		}
		if i > 1000 {
			b.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(chips.LeptonBootTime)
	return path
}

// TestBusTrafficAllocatesNothing: what a flight instance puts on the bus
// every tick (a motor write, an IMU read, a lease read) and its camera
// reads allocate nothing in drone-sim. drone-sim does not collect while
// it flies (cmd/drone-sim says why), so its heap must not grow with
// flying.
func TestBusTrafficAllocatesNothing(t *testing.T) {
	d := hovering(0, 0)
	time.Sleep(chips.LeptonBootTime) // the camera streams once booted
	c := simbus.Client{ID: 1, Name: "flight"}
	motor := []byte{chips.PCA9685LED0OnL, 0, 0, 0xcc, 0x04}
	imuReg, imu, video := []byte{0x3b}, make([]byte, 14), make([]byte, 10*chips.LeptonPacketSize)
	for _, tt := range []struct {
		name string
		op   func() error
	}{
		{"motor write", func() error { return d.Tx(c, sim.AddrPCA9685, 1, motor, nil) }},
		{"IMU read", func() error { return d.Tx(c, sim.AddrMPU9250, 0, imuReg, imu) }},
		{"lease read", func() error { _, err := d.Lease(c, 0); return err }},
		{"camera read", func() error { return d.SPI(c, sim.SPICamera, nil, video) }},
	} {
		var err error
		allocs := testing.AllocsPerRun(300, func() { err = errors.Join(err, tt.op()) })
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations a call, want 0", tt.name, allocs)
		}
	}
	if rep := d.CameraReport(0, 0); rep.Frames == 0 {
		t.Errorf("the camera reads delivered no frame, so the test missed that path: %+v", rep)
	}
}
