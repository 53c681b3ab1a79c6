package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/rig"
)

// These tests fly the real binaries as separate processes against
// drone-sim, as production does.

var (
	bins rig.Binaries
	// v2Bin is flight v2; faultBin a v2 with the FLIGHT_FAULT switch;
	// incompatBin a v3 that only reads state schema flight.state/2.
	v2Bin, faultBin, incompatBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flight-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	bins, err = rig.Build(ctx, dir, "", "v1")
	if err == nil {
		v2Bin, err = rig.BuildFlight(ctx, dir, rig.FlightBuild{Version: "v2"})
	}
	if err == nil {
		faultBin, err = rig.BuildFlight(ctx, dir, rig.FlightBuild{Version: "v2-faulty", Faults: true})
	}
	if err == nil {
		incompatBin, err = rig.BuildFlight(ctx, dir, rig.FlightBuild{Version: "v3", Accepts: "flight.state/2"})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestBadSettings: a missing or malformed setting stops the app before it
// touches the hardware, with a message that names the setting.
func TestBadSettings(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"no bus", nil, "FLIGHT_BUS"},
		{"rate not a number", []string{"FLIGHT_BUS=sim:/nowhere", "FLIGHT_RATE_HZ=fast"}, "FLIGHT_RATE_HZ"},
		{"rate out of range", []string{"FLIGHT_BUS=sim:/nowhere", "FLIGHT_RATE_HZ=5000"}, "FLIGHT_RATE_HZ"},
		{"altitude", []string{"FLIGHT_BUS=sim:/nowhere", "FLIGHT_ALT_M=-1"}, "FLIGHT_ALT_M"},
		{"start mode", []string{"FLIGHT_BUS=sim:/nowhere", "FLIGHT_START=warm"}, "FLIGHT_START"},
		{"epoch", []string{"FLIGHT_BUS=sim:/nowhere", "FLIGHT_EPOCH=0"}, "FLIGHT_EPOCH"},
		{"pattern", []string{"FLIGHT_BUS=sim:/nowhere", "FLIGHT_PATTERN=loop"}, "FLIGHT_PATTERN"},
		{"no simulator", []string{"FLIGHT_BUS=sim:/nonexistent/drone-sim.sock"}, "drone-sim running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bins.Flight)
			cmd.Env = append(cleanEnv(), tc.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exited 0; output:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output does not name %s:\n%s", tc.want, out)
			}
		})
	}
}

// cleanEnv is the environment without FLIGHT_* settings of the caller.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLIGHT_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestHoverObserveLand flies v1 through take-off and a hover in gusts with
// sensor noise, attaches a second process mid-hover that reads the IMU, and
// lands on SIGTERM. The referee judges each phase.
func TestHoverObserveLand(t *testing.T) {
	ctx := context.Background()
	var simLog, v1Log, obsLog rig.LogBuffer
	// Gusts of 0.5 N (a twentieth of the drone's weight, a fresh breeze on
	// a 1 kg quad) and 0.01 N·m, with realistic sensor noise.
	s, err := rig.StartSim(ctx, bins.Sim, t.TempDir(), []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"}, &simLog)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	v1, err := rig.Start(bins.Flight, []string{"FLIGHT_BUS=sim:" + s.Socket, "FLIGHT_INSTANCE=v1", "FLIGHT_PATTERN=hover"}, &v1Log)
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Kill()
	defer func() {
		if t.Failed() {
			t.Logf("v1 log tail:\n%s", v1Log.Tail(3000))
		}
	}()

	hover, err := s.WaitHover(ctx, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// Bounds for a hover in gusts. Altitude: 0.3 m (p99) is three times
	// what this controller holds with 5 cm barometer noise, and far inside
	// what a broken altitude loop does (metres). Tilt: 8° (p99) is a level
	// hover by any pilot's standard; a wrong sign or gain diverges past
	// 30° (the crash limit) in well under a second. Motor updates: p99
	// under 25 ms (10 ticks): steady state is 2.5-2.7 ms on a quiet machine,
	// but a noisy shared host was seen at 13 ms while a second process
	// started; what this test proves is carried by the writers and the
	// flight figures, the gap bound only catches a loop that stalls.
	check := func(t *testing.T, phase string, from, to int64) {
		t.Helper()
		r, err := s.Report(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.1f s, updates %d, gap max %.2f p99 %.2f ms, tilt p99 %.2f°, alt err p99 %.3f m, writers %v",
			phase, r.Seconds, r.Updates, r.MaxGapMs, r.P99GapMs, r.AttErrP99Deg, r.AltErrP99M, r.Writers)
		switch {
		case r.Crashed:
			t.Fatalf("%s: crashed", phase)
		case !r.Airborne:
			t.Fatalf("%s: not airborne", phase)
		case r.AltErrP99M > 0.3:
			t.Errorf("%s: altitude error p99 %.3f m > 0.3 m", phase, r.AltErrP99M)
		case r.AttErrP99Deg > 8:
			t.Errorf("%s: tilt p99 %.2f° > 8°", phase, r.AttErrP99Deg)
		case r.P99GapMs > 25:
			t.Errorf("%s: motor update gap p99 %.2f ms > 25 ms", phase, r.P99GapMs)
		case len(r.Writers) != 1 || r.Writers[0] != "v1":
			t.Errorf("%s: writers %v, want only v1", phase, r.Writers)
		case r.DoubleDrive != 0 || r.StaleRefused != 0:
			t.Errorf("%s: double drive %d, stale %d", phase, r.DoubleDrive, r.StaleRefused)
		}
	}

	t.Run("hover 10 s in gusts", func(t *testing.T) {
		time.Sleep(10 * time.Second)
		check(t, "hover", hover, mono.Now())
	})

	t.Run("second process attaches and reads", func(t *testing.T) {
		from := mono.Now()
		obs, err := rig.Start(bins.Flight, []string{"FLIGHT_BUS=sim:" + s.Socket, "FLIGHT_INSTANCE=observer", "FLIGHT_START=attach"}, &obsLog)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		if err := obs.Stop(5 * time.Second); err != nil {
			t.Fatalf("observer: %v\n%s", err, obsLog.String())
		}
		to := mono.Now()
		if !strings.Contains(obsLog.String(), `"msg":"control loop running"`) {
			t.Fatalf("observer never ran its loop:\n%s", obsLog.String())
		}
		writes, err := s.Writes(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range writes {
			if w.Writer != "v1" {
				t.Fatalf("write by %q while observing: %+v", w.Writer, w)
			}
		}
		check(t, "observed", from, to)
	})

	t.Run("SIGTERM lands", func(t *testing.T) {
		if err := v1.Stop(30 * time.Second); err != nil {
			t.Fatalf("v1 exit: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // ten motor time constants to spin down
		truth, err := s.Truth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if truth.Crashed || truth.Airborne {
			t.Fatalf("after landing: crashed=%v airborne=%v z=%.2f", truth.Crashed, truth.Airborne, truth.Pos[2])
		}
		if !strings.Contains(v1Log.String(), "landed; motors idle") {
			t.Fatalf("v1 did not report landing:\n%s", v1Log.Tail(2000))
		}
		for i, m := range truth.Motors {
			if m > 0.1 {
				t.Fatalf("motor %d still at %.2f after landing", i, m)
			}
		}
	})
}

// TestArm64UnderQemu runs the arm64 build of the flight app, the binary a Pi
// runs, under qemu-user against the virtual drone: it must arm, take off and
// reach hover. It needs binfmt_misc with qemu-aarch64 registered (make test
// sets that up as root); elsewhere it skips, except in CI where a skip would
// hide a broken cross build.
func TestArm64UnderQemu(t *testing.T) {
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		msg := "qemu-aarch64 is not registered with binfmt_misc (as root: apt-get install qemu-user-static binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx := context.Background()
	arm, err := rig.Build(ctx, t.TempDir(), "arm64", "v1-arm64")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(arm.Flight, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v1-arm64") {
		t.Fatalf("arm64 flight version: %v: %s", err, out)
	}
	var simLog, armLog rig.LogBuffer
	s, err := rig.StartSim(ctx, bins.Sim, t.TempDir(), nil, &simLog)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	f, err := rig.Start(arm.Flight, []string{"FLIGHT_BUS=sim:" + s.Socket, "FLIGHT_INSTANCE=arm64", "FLIGHT_PATTERN=hover"}, &armLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Kill()
	hover, err := s.WaitHover(ctx, 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, armLog.Tail(2000))
	}
	time.Sleep(2 * time.Second)
	r, err := s.Report(ctx, hover, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 under qemu: gap p99 %.2f ms, tilt p99 %.2f°, alt err p99 %.3f m", r.P99GapMs, r.AttErrP99Deg, r.AltErrP99M)
	if r.Crashed || !r.Airborne || len(r.Writers) != 1 || r.Writers[0] != "arm64" {
		t.Fatalf("arm64 flight: %+v", r)
	}
	if err := f.Stop(30 * time.Second); err != nil {
		t.Fatalf("arm64 flight did not land cleanly: %v", err)
	}
}
