// Command skyswap-demo runs the product on this machine and updates the
// flight app of a flying drone. It starts the ground station, `dronectl
// ground` (its first line is the page's URL: http://127.0.0.1:8080/ when
// that port is free), whose embedded MQTT broker and registry the rest
// uses; builds flight:v1 and flight:v2 as OCI images and pushes them to the
// ground's registry, starts drone-sim (gusts and sensor noise on) and
// drone-agent (which drives containerd and embeds the on-board NATS
// server). Then, as an operator would: `dronectl push flight:v1` deploys v1, which takes off; after 6 s of
// hover `dronectl push flight:v2` makes the agent pull v2 (only its changed
// layer), start it beside v1, hand the motors over at a tick boundary, keep
// v1 warm through probation and retire it. The drone's telemetry (relayed
// by the agent over MQTT) is shown once a second; v2 brings the thermal
// camera, whose frames come down over MQTT too (the last is saved as
// /tmp/skyswap-demo-camera.jpg). The page shows it all live: the
// attitude, the plots with the cut-over, the update's phases, v2's camera;
// it can push and roll back too. After DEMO_SECONDS of flight (default 20;
// 0 = until Ctrl-C, to watch and press push) the owner lands. The last line is
// {"demo":"summary",...}: the referee's figures, the update's phase
// timings and the bytes pulled.
//
// It needs root and containerd (make demo starts it). With -processes it
// runs the earlier demo instead: no containers and no agent, the flight
// apps as processes and the coordinator in this process.
//
// The binaries are taken from the directory this program is in (make demo
// builds them into bin/); the images are built from the current directory,
// which must be in the skyswap module.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/ground"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/hw/sim/referee"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/loopback"
	"github.com/skyswap/skyswap/rig"
)

func main() {
	processes := flag.Bool("processes", false, "run the flight apps as processes, without containerd or the agent")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log, *processes); err != nil {
		log.Error("demo failed", "err", err)
		fmt.Fprintln(os.Stderr, "skyswap-demo:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, processes bool) error {
	seconds := 20.0
	if v := os.Getenv("DEMO_SECONDS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("DEMO_SECONDS=%q: want a number of seconds (0 = until Ctrl-C)", v)
		}
		seconds = f
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Dir(self)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if processes {
		return runProcesses(ctx, log, seconds, dir)
	}
	return runAgent(ctx, log, seconds, dir)
}

// cameraFile receives the last camera frame the ground received.
var cameraFile = filepath.Join(os.TempDir(), "skyswap-demo-camera.jpg")

// runAgent is the demo through drone-agent and containerd: set up, start
// the product, deploy v1, fly (pushing v2 beside), land and sum up.
func runAgent(ctx context.Context, log *slog.Logger, seconds float64, dir string) error {
	d := &agentDemo{log: log, seconds: seconds}
	defer d.close()
	for _, phase := range []func(context.Context, string) error{d.prepare, d.start, d.deploy, d.flyAndPush} {
		if err := phase(ctx, dir); err != nil {
			return err
		}
	}
	return d.land(context.WithoutCancel(ctx))
}

// agentDemo is runAgent's state, phase by phase.
type agentDemo struct {
	log     *slog.Logger
	seconds float64
	closers []func()

	bins            map[string]string
	work            string
	logFile         string
	logs            *os.File
	s               *rig.Stack
	g               *rig.Ground
	changed         int64 // v2's changed layer, bytes
	deployed, hover int64
	up              *updateFigures
}

func (d *agentDemo) close() {
	for _, f := range slices.Backward(d.closers) {
		f()
	}
}

// prepare checks what the demo needs and makes its work directory and log.
func (d *agentDemo) prepare(_ context.Context, dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("the demo runs containers: run it as root (sudo make demo), or bin/skyswap-demo -processes for the demo without containers")
	}
	d.bins = map[string]string{}
	for _, b := range []string{"drone-sim", "drone-agent", "dronectl"} {
		d.bins[b] = filepath.Join(dir, b)
		if _, err := os.Stat(d.bins[b]); err != nil {
			return fmt.Errorf("%s is missing: run make demo (it builds bin/ first)", d.bins[b])
		}
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run the demo from the skyswap checkout (make demo): it builds the flight images from there")
	}
	var err error
	if d.work, err = os.MkdirTemp("", "skyswap-demo-"); err != nil {
		return err
	}
	d.closers = append(d.closers, func() { os.RemoveAll(d.work) })
	d.logFile = filepath.Join(os.TempDir(), "skyswap-demo.log")
	if d.logs, err = os.Create(d.logFile); err != nil {
		return err
	}
	d.closers = append(d.closers, func() { d.logs.Close() })
	return nil
}

// start runs the product (the ground station first: its URL is the first
// thing said) and watches the drone as the ground does.
func (d *agentDemo) start(ctx context.Context, _ string) error {
	begin := mono.Now()
	listen, err := pageAddr()
	if err != nil {
		return err
	}
	d.log.Info("ground station: open http://"+listen+"/ to watch; starting it (its MQTT broker and registry), flight:v1 and flight:v2 into its registry, drone-sim with gusts, drone-agent",
		"url", "http://"+listen+"/", "seconds", d.seconds, "process_logs", d.logFile)
	if d.s, err = rig.StartStack(ctx, rig.StackConfig{
		Dir: d.work, Sim: d.bins["drone-sim"], Agent: d.bins["drone-agent"], Ground: d.bins["dronectl"], GroundListen: listen,
		SimEnv: []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"},
		AppEnv: []string{"FLIGHT_ON_TERM=land"}, Logs: d.logs,
	}); err != nil {
		return fmt.Errorf("%w (process logs: %s)", err, d.logFile)
	}
	d.closers = append(d.closers, d.s.Close)
	diff, err := build.LayerDiff(d.s.Indexes["v1"], d.s.Indexes["v2"], d.s.Platform)
	if err != nil {
		return err
	}
	d.changed = diff.AddedBytes()
	d.log.Info("ready", "url", d.s.Ground.URL, "registry", d.s.RegistryHost, "broker", d.s.BrokerURL, "drone", d.s.Drone,
		"images", d.s.Refs, "changed_layer_bytes", d.changed, "setup_s", round(float64(mono.Now()-begin)/1e9))
	if d.g, err = rig.WatchDrone(ctx, d.s.BrokerURL, d.s.Drone); err != nil {
		return err
	}
	d.closers = append(d.closers, d.g.Close)
	return nil
}

// dronectl runs bin/dronectl with the stack's ground settings, logging
// what it prints.
func (d *agentDemo) dronectl(ctx context.Context, args ...string) error {
	d.log.Info("ground", "run", "dronectl "+strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, d.bins["dronectl"], args...)
	cmd.Env = append(os.Environ(), d.s.DronectlEnv()...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		d.log.Info("dronectl", "out", sc.Text())
	}
	return cmd.Wait()
}

// deploy pushes flight:v1, which takes off and hovers.
func (d *agentDemo) deploy(ctx context.Context, _ string) error {
	d.deployed = mono.Now()
	if err := d.dronectl(ctx, "push", "flight:v1"); err != nil {
		return fmt.Errorf("deploy flight:v1: %w (process logs: %s)", err, d.logFile)
	}
	var err error
	if d.hover, err = d.s.Sim.WaitHover(ctx, 60*time.Second); err != nil {
		return err
	}
	d.log.Info("hovering", "takeoff_s", round(float64(d.hover-d.deployed)/1e9))
	return nil
}

// flyAndPush flies for the demo's time, showing the telemetry once a
// second, and pushes flight:v2 6 s in.
func (d *agentDemo) flyAndPush(ctx context.Context, _ string) error {
	show := func() {
		t, n := d.g.Telemetry()
		if n == 0 {
			return
		}
		_, frames := d.g.Camera()
		d.log.Info("telemetry", "owner", t.Instance, "version", t.Version, "epoch", t.Epoch, "alt_m", round(t.AltM),
			"roll_deg", round(t.RollDeg), "pitch_deg", round(t.PitchDeg), "motors", roundAll(t.Motors), "messages", n,
			"camera_frames", frames)
	}
	push := func(args ...string) error { return d.dronectl(ctx, args...) }
	fly(ctx, d.seconds, show, func() { d.up = pushV2(ctx, d.log, d.s, d.g, push, d.changed) })
	return nil
}

// land keeps the camera's last frame, lands, and prints the summary.
func (d *agentDemo) land(ctx context.Context) error {
	flight, err := d.s.Sim.Report(ctx, d.hover, mono.Now())
	if err != nil {
		return err
	}
	_, nTel := d.g.Telemetry()
	jpeg, nFrames := d.g.Camera()
	if nFrames > 0 {
		// The last frame v2's camera sent down, for a person to look at.
		if err := os.WriteFile(cameraFile, jpeg, 0o644); err == nil {
			d.log.Info("camera", "frames", nFrames, "last_frame", cameraFile)
		}
	}
	d.log.Info("landing")
	landErr := d.s.Land(ctx, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	final, err := d.s.Sim.Truth(ctx)
	if err != nil {
		return err
	}
	total, err := d.s.Sim.Report(ctx, d.deployed, 0)
	if err != nil {
		return err
	}
	sum := summaryAgent{
		Demo: "summary", Path: "dronectl ground, dronectl push, mqtt, drone-agent, containerd",
		flightFigures: flightOf(float64(d.hover-d.deployed)/1e9, flight, total),
		Update:        d.up, TelemetryMessages: nTel, CameraFrames: nFrames, Landed: landErr == nil && !final.Airborne, Crashed: total.Crashed,
	}
	b, _ := json.Marshal(sum)
	fmt.Println(string(b))
	if total.Crashed {
		return fmt.Errorf("the drone crashed (process logs: %s)", d.logFile)
	}
	if d.up != nil && d.up.Outcome != "committed" {
		return fmt.Errorf("the update did not commit: %s %s (process logs: %s)", d.up.Outcome, d.up.Error, d.logFile)
	}
	return nil
}

// pageAddr is where the ground station's page goes: 127.0.0.1:8080 if it
// is free (what a person types), else a free loopback port.
func pageAddr() (string, error) {
	if l, err := net.Listen("tcp", ground.DefaultListen); err == nil {
		l.Close()
		return ground.DefaultListen, nil
	}
	return loopback.Addr()
}

// fly calls show once a second and, 6 s in, update beside it, until
// seconds have passed (0 = until ctx ends). It returns once the flight time
// is over and a started update has finished (at most 30 s more).
func fly(ctx context.Context, seconds float64, show, update func()) {
	var end <-chan time.Time
	if seconds > 0 {
		end = time.After(time.Duration(seconds * float64(time.Second)))
	}
	updateAt := time.After(6 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var updated chan struct{} // nil until the update starts
flight:
	for {
		select {
		case <-ctx.Done():
			break flight
		case <-end:
			break flight
		case <-tick.C:
			show()
		case <-updateAt:
			updated = make(chan struct{})
			go func() { defer close(updated); update() }()
		}
	}
	if updated != nil {
		select {
		case <-updated: // in progress at the end: let it finish
		case <-time.After(30 * time.Second):
		}
	}
}

// pushV2 runs `dronectl push flight:v2` and measures the update from the
// ground's events, the registry and the referee.
func pushV2(ctx context.Context, log *slog.Logger, s *rig.Stack, g *rig.Ground, dronectl func(...string) error, changed int64) *updateFigures {
	bg := context.WithoutCancel(ctx)
	sent := mono.Now()
	sentWall := time.Now()
	steady, _ := s.Sim.Report(bg, sent-int64(time.Second), sent)
	blobs0, _ := s.RegistryBlobBytes(bg)
	before := len(g.Events(""))
	err := dronectl("push", "flight:v2")
	time.Sleep(200 * time.Millisecond) // the last events arrive
	blobs1, _ := s.RegistryBlobBytes(bg)
	u := &updateFigures{ChangedLayerBytes: changed, RegistryBlobBytes: blobs1 - blobs0, SteadyMaxGapMs: round(steady.MaxGapMs),
		SteadyTiltP99Deg: round(steady.AttErrP99Deg)}
	if err != nil {
		u.Error = err.Error()
	}
	evs := g.Events("")[before:]
	seen := map[string]bool{}
	for _, e := range evs {
		if u.Command == "" {
			u.Command = e.Command
		}
		if e.Command != u.Command {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, e.Time); err == nil && !seen[e.Phase] {
			seen[e.Phase] = true
			u.Phases = append(u.Phases, phaseAt{Phase: e.Phase, AtMs: round(float64(at.Sub(sentWall)) / 1e6)})
		}
		switch e.Phase {
		case report.PhasePulled:
			u.BytesPulled = e.Bytes
		case report.PhaseResult:
			u.Outcome, u.From, u.To = e.Outcome, e.From, e.To
			if e.Error != "" {
				u.Error = e.Error
			}
		}
	}
	if u.Outcome != "committed" {
		log.Error("the update did not commit", "outcome", u.Outcome, "err", u.Error)
		return u
	}
	now := mono.Now()
	cut, gap, err := s.FirstWrite(bg, u.To, sent, now)
	if err != nil {
		u.Error = err.Error()
		return u
	}
	u.CmdToControlMs, u.CutoverGapMs = round(float64(cut-sent)/1e6), round(gap)
	w, err := s.Sim.Report(bg, cut-int64(500*time.Millisecond), cut+int64(500*time.Millisecond))
	if err == nil {
		u.WindowMaxGapMs, u.WindowTiltMaxDeg, u.DoubleDrive = round(w.MaxGapMs), round(w.AttErrMaxDeg), w.DoubleDrive
	}
	log.Info("update committed", "from", u.From, "to", u.To, "cmd_to_control_ms", u.CmdToControlMs,
		"bytes_pulled", u.BytesPulled, "changed_layer_bytes", changed, "window_max_gap_ms", u.WindowMaxGapMs)
	return u
}

// summaryAgent is the demo's final line, fields in print order.
type summaryAgent struct {
	Demo string `json:"demo"`
	Path string `json:"path"`
	flightFigures
	Update            *updateFigures `json:"update,omitempty"`
	TelemetryMessages int            `json:"telemetry_messages"`
	CameraFrames      int            `json:"camera_frames"` // JPEGs on fleet/<drone>/camera (v2 has the camera)
	Landed            bool           `json:"landed"`
	Crashed           bool           `json:"crashed"`
}

// updateFigures describe the v1 -> v2 update as the ground saw it: each
// phase's first event in ms after `dronectl push` started, the bytes the
// agent fetched and the registry served against the changed layer, the time
// from the command to the new owner's first motor write, and the referee
// over ±500 ms around that write against the second before the command.
type updateFigures struct {
	Command           string    `json:"command"`
	Outcome           string    `json:"outcome"`
	From              string    `json:"from"`
	To                string    `json:"to"`
	Phases            []phaseAt `json:"phases"`
	CmdToControlMs    float64   `json:"cmd_to_control_ms"`
	CutoverGapMs      float64   `json:"cutover_gap_ms"` // the old owner's last motor update to the new owner's first
	BytesPulled       int64     `json:"bytes_pulled"`
	RegistryBlobBytes int64     `json:"registry_blob_bytes"`
	ChangedLayerBytes int64     `json:"changed_layer_bytes"`
	WindowMaxGapMs    float64   `json:"window_max_gap_ms"`
	SteadyMaxGapMs    float64   `json:"steady_max_gap_ms"`
	WindowTiltMaxDeg  float64   `json:"window_tilt_max_deg"`
	SteadyTiltP99Deg  float64   `json:"steady_tilt_p99_deg"`
	DoubleDrive       int       `json:"double_drive"`
	Error             string    `json:"error,omitempty"`
}

type phaseAt struct {
	Phase string  `json:"phase"`
	AtMs  float64 `json:"at_ms"`
}

// flightFigures are the referee's figures for the flight from hover to
// the end (double drive and stale writes: from the first deploy on).
type flightFigures struct {
	TakeoffS     float64  `json:"takeoff_s"`
	FlownS       float64  `json:"flown_s"`
	MotorUpdates int      `json:"motor_updates"`
	MaxGapMs     float64  `json:"max_gap_ms"`
	P99GapMs     float64  `json:"p99_gap_ms"`
	AttErrP99Deg float64  `json:"att_err_p99_deg"`
	AltErrP99M   float64  `json:"alt_err_p99_m"`
	DoubleDrive  int      `json:"double_drive"`
	StaleRefused int      `json:"stale_refused"`
	Writers      []string `json:"writers"`
}

func flightOf(takeoffS float64, flight, total referee.Report) flightFigures {
	return flightFigures{
		TakeoffS: round(takeoffS), FlownS: round(flight.Seconds), MotorUpdates: flight.Updates,
		MaxGapMs: round(flight.MaxGapMs), P99GapMs: round(flight.P99GapMs), AttErrP99Deg: round(flight.AttErrP99Deg),
		AltErrP99M: round(flight.AltErrP99M), DoubleDrive: total.DoubleDrive, StaleRefused: total.StaleRefused,
		Writers: flight.Writers,
	}
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = round(x)
	}
	return out
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }
