// Package rig runs the virtual drone and flight apps as separate processes
// on one machine, the way they run in production, and reads the referee.
// The end-to-end tests, `make demo` and `make bench` all fly through it.
package rig

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/loopback"
)

// Binaries are the programs a rig runs.
type Binaries struct {
	Sim    string // drone-sim
	Flight string // flight
}

// Build compiles drone-sim and flight into dir for goarch ("" = host),
// flight stamped with version. It needs the Go toolchain on PATH.
func Build(ctx context.Context, dir, goarch, version string) (Binaries, error) {
	b := Binaries{Sim: filepath.Join(dir, "drone-sim")}
	if err := goBuild(ctx, b.Sim, "github.com/skyswap/skyswap/cmd/drone-sim", goarch, "", ""); err != nil {
		return b, err
	}
	var err error
	b.Flight, err = BuildFlight(ctx, dir, FlightBuild{Version: version, GOARCH: goarch})
	return b, err
}

// FlightBuild is one build of the flight app.
type FlightBuild struct {
	Version string // stamped into the binary; the file is flight-<Version>
	GOARCH  string // "" = host
	// Accepts overrides the state schemas it hydrates from (comma
	// separated); "" = the build's own.
	Accepts string
	// Faults builds in the FLIGHT_FAULT switch (tests only).
	Faults bool
	// Features of the build (app.Features); nil = the release's,
	// build.FlightFeatures(Version): v2 and later have the camera.
	Features []string
}

// BuildFlight compiles one flight build into dir, as its image would carry
// it (images/build.Binary), and returns its path.
func BuildFlight(ctx context.Context, dir string, fb FlightBuild) (string, error) {
	out := filepath.Join(dir, "flight-"+fb.Version)
	cfg := build.Config{Version: fb.Version, Features: fb.Features}
	if fb.Accepts != "" {
		cfg.Schemas = strings.Split(fb.Accepts, ",")
	}
	if fb.Faults {
		cfg.Tags = []string{"skyswap_faults"}
	}
	p := v1.Platform{OS: "linux", Architecture: cmp.Or(fb.GOARCH, runtime.GOARCH)}
	return out, build.Binary(ctx, cfg, p, out)
}

func goBuild(ctx context.Context, out, pkg, goarch, ldflags, tags string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", tags, "-ldflags", ldflags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if goarch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+goarch, "GOOS=linux")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("rig: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Sim is a running drone-sim process.
type Sim struct {
	Socket string // the bus socket; flight apps use FLIGHT_BUS=sim:<Socket>
	HTTP   string // the referee's loopback address
	proc   *Proc
	client http.Client
}

// StartSim starts drone-sim with its socket in dir and the extra SIM_*
// settings in env, logging to logw, and waits until it answers.
func StartSim(ctx context.Context, bin, dir string, env []string, logw io.Writer) (*Sim, error) {
	addr, err := loopback.Addr()
	if err != nil {
		return nil, err
	}
	s := &Sim{Socket: filepath.Join(dir, "drone-sim.sock"), HTTP: addr, client: http.Client{Timeout: 5 * time.Second}}
	env = append([]string{"SIM_SOCKET=" + s.Socket, "SIM_HTTP=" + addr}, env...)
	if s.proc, err = Start(bin, env, logw); err != nil {
		return nil, err
	}
	up := func() bool {
		if _, err := os.Stat(s.Socket); err != nil {
			return false
		}
		resp, err := s.client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}
	if err := s.proc.Await(ctx, "drone-sim", 10*time.Second, 20*time.Millisecond, up); err != nil {
		s.proc.Kill()
		return nil, err
	}
	return s, nil
}

// Pid is the drone-sim process's ID.
func (s *Sim) Pid() int { return s.proc.Pid() }

func (s *Sim) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTP+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("rig: drone-sim %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("rig: drone-sim %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func span(from, to int64) string {
	return "?from=" + strconv.FormatInt(from, 10) + "&to=" + strconv.FormatInt(to, 10)
}

// Report fetches the referee's report on [from, to] (CLOCK_MONOTONIC ns, 0
// = the log's start / now).
func (s *Sim) Report(ctx context.Context, from, to int64) (referee.Report, error) {
	var r referee.Report
	err := s.get(ctx, "/report"+span(from, to), &r)
	return r, err
}

// Writes fetches the actuator write log on [from, to].
func (s *Sim) Writes(ctx context.Context, from, to int64) ([]referee.Write, error) {
	var w []referee.Write
	err := s.get(ctx, "/writes"+span(from, to), &w)
	return w, err
}

// Camera fetches the referee's camera report on [from, to].
func (s *Sim) Camera(ctx context.Context, from, to int64) (referee.CameraReport, error) {
	var r referee.CameraReport
	err := s.get(ctx, "/camera"+span(from, to), &r)
	return r, err
}

// CameraFrames fetches the frames delivered in [from, to], with what each
// image shows.
func (s *Sim) CameraFrames(ctx context.Context, from, to int64) ([]referee.CameraFrame, error) {
	var f []referee.CameraFrame
	err := s.get(ctx, "/camera/frames"+span(from, to), &f)
	return f, err
}

// CorruptCamera makes the camera corrupt its next n video packets: kind
// "crc" (a bad checksum) or "seq" (a wrong packet number).
func (s *Sim) CorruptCamera(ctx context.Context, kind string, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+s.HTTP+"/camera/corrupt?kind="+kind+"&n="+strconv.Itoa(n), nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("rig: drone-sim corrupt: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("rig: drone-sim corrupt: %s: %s", resp.Status, b)
	}
	return nil
}

// Truth fetches the simulator's ground truth.
func (s *Sim) Truth(ctx context.Context) (sim.Truth, error) {
	var t sim.Truth
	err := s.get(ctx, "/state", &t)
	return t, err
}

// WaitHover waits until the drone first reaches the reference altitude and
// returns when that was (CLOCK_MONOTONIC ns). It fails if the drone crashes.
func (s *Sim) WaitHover(ctx context.Context, timeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		t, err := s.Truth(ctx)
		if err != nil {
			return 0, err
		}
		if t.Crashed {
			return 0, fmt.Errorf("rig: the drone crashed before reaching hover (z=%.2f m)", t.Pos[2])
		}
		if t.HoverSince != 0 {
			return t.HoverSince, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("rig: no hover within %v (z=%.2f m, armed=%v)", timeout, t.Pos[2], t.Armed)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends drone-sim.
func (s *Sim) Stop() error { return s.proc.Stop(5 * time.Second) }

// Proc is a child process.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with env added to this process's environment, output to
// logw (nil = discard).
func Start(bin string, env []string, logw io.Writer, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if logw == nil {
		logw = io.Discard
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rig: start %s: %w", bin, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid once Done is closed.
func (p *Proc) Err() error { return p.err }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits up to grace for the exit, then SIGKILL. It
// returns the exit error (nil for a clean exit after SIGTERM).
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("rig: %s ignored SIGTERM for %v and was killed", filepath.Base(p.cmd.Path), grace)
	}
}

// Await polls ready every interval until it says yes, and fails, with
// what named, if the process exits, ctx ends or within passes first. The
// caller decides what becomes of a process that never got ready.
func (p *Proc) Await(ctx context.Context, what string, within, interval time.Duration, ready func() bool) error {
	deadline := time.Now().Add(within)
	for !ready() {
		select {
		case <-p.done:
			return fmt.Errorf("rig: %s exited at start: %v", what, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rig: %s not ready within %v", what, within)
		}
	}
	return nil
}

// Kill sends SIGKILL and waits.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}
