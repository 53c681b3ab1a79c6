package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/agent/instances"
	"github.com/skyswap/skyswap/handoff"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/onboard"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/build/buildtest"
	"github.com/skyswap/skyswap/loopback"
	"github.com/skyswap/skyswap/rig"
)

const testNamespace = "skyswap-test-chaos"

// chaosRig is the product's containers on one machine, without the
// agent: flight v1 owns the virtual drone, flight v2 shadows it as a
// candidate, each in a container of its release, labelled as the agent
// labels them, both reaching the on-board NATS through skyswap-chaos's
// relay.
type chaosRig struct {
	t       *testing.T
	bin     string // skyswap-chaos
	rt      *containers.Runtime
	inst    *instances.Runtime
	sim     *rig.Sim
	nats    *onboard.Server
	relay   string // the relay's address
	logDir  string
	simLogs rig.LogBuffer
	refs    map[string]string // version -> image
}

func newChaosRig(t *testing.T) *chaosRig {
	t.Helper()
	if os.Geteuid() != 0 {
		containerstest.SkipOrFail(t, "the chaos test needs root (containerd, cgroups)")
	}
	if _, err := os.Stat(containers.DefaultSocket); err != nil {
		containerstest.SkipOrFail(t, "no containerd socket at %s: run scripts/dev-setup.sh containerd", containers.DefaultSocket)
	}
	ctx := context.Background()
	r := &chaosRig{t: t, logDir: t.TempDir()}
	host, refs, _ := buildtest.Releases(t, "../..", "v1", "v2")
	var err error
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	r.rt, err = containers.Open(octx, containers.Config{Namespace: testNamespace, LogDir: r.logDir, PlainHTTP: []string{host}})
	cancel()
	if err != nil {
		containerstest.SkipOrFail(t, "%v", err)
	}
	t.Cleanup(func() { r.rt.Close() })
	r.removeAll() // what an interrupted run left
	for _, ref := range refs {
		if _, err := r.rt.Pull(ctx, ref, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.rt.RemoveImage(context.Background(), ref) })
	}
	dir := t.TempDir()
	bins, err := rig.Build(ctx, dir, "", "host")
	if err != nil {
		t.Fatal(err)
	}
	r.bin = filepath.Join(dir, "skyswap-chaos")
	if out, err := exec.Command("go", "build", "-o", r.bin, "github.com/skyswap/skyswap/cmd/skyswap-chaos").CombinedOutput(); err != nil {
		t.Fatalf("build skyswap-chaos: %v\n%s", err, out)
	}
	simDir, err := os.MkdirTemp("", "skyswap-sim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(simDir) })
	os.Chmod(simDir, 0o755) // the containers' user must reach the socket
	if r.sim, err = rig.StartSim(ctx, bins.Sim, simDir, []string{"SIM_GUST_N=0.5", "SIM_NOISE=1"}, &r.simLogs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sim.Stop() })
	if r.nats, err = onboard.Start(onboard.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nats.Shutdown)
	if r.relay, err = loopback.Addr(); err != nil {
		t.Fatal(err)
	}
	r.inst = instances.New(r.rt, instances.Config{
		Env: []string{"FLIGHT_BUS=sim:/run/skyswap-sim/" + filepath.Base(r.sim.Socket), "FLIGHT_NATS=nats://" + r.relay,
			"FLIGHT_PATTERN=hover", "FLIGHT_ON_TERM=exit"},
		Mounts: []containers.Mount{{Source: simDir, Target: "/run/skyswap-sim"}},
		Grace:  5 * time.Second,
		Labels: map[string]string{"io.skyswap.app": "flight"},
	})
	r.refs = refs
	t.Cleanup(r.cleanup)
	return r
}

func (r *chaosRig) removeAll() {
	list, err := r.rt.List(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	for _, c := range list {
		if err := r.rt.Remove(context.Background(), c.ID); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *chaosRig) cleanup() {
	if r.t.Failed() {
		for _, id := range []string{"flight-v1", "flight-v2"} {
			b, _ := os.ReadFile(filepath.Join(r.logDir, id+".log"))
			r.t.Logf("%s log (tail):\n%s", id, tailOf(string(b), 3000))
		}
		r.t.Logf("drone-sim log (tail):\n%s", r.simLogs.Tail(2000))
	}
	for _, id := range []string{"flight-v2", "flight-v1"} {
		r.rt.Signal(context.Background(), id, syscall.SIGCONT) // in case a failure left it stopped
		r.inst.Stop(context.Background(), id)
	}
}

func tailOf(s string, n int) string { return s[max(0, len(s)-n):] }

// inspect returns a container's status, failing the test without one.
func (r *chaosRig) inspect(id string) containers.Status {
	r.t.Helper()
	st, err := r.rt.Inspect(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// chaosProc is a running skyswap-chaos.
type chaosProc struct {
	cmd    *exec.Cmd
	events chan Event // its stdout, closed once it has exited
	stderr *rig.LogBuffer
	done   chan struct{}
	err    error // its exit, once done is closed
}

// chaos starts skyswap-chaos on the rig's namespace selecting v2 by label,
// with args added.
func (r *chaosRig) chaos(args ...string) *chaosProc {
	r.t.Helper()
	args = append([]string{"-namespace", testNamespace, "-select", "io.skyswap.app=flight,io.skyswap.version=v2"}, args...)
	p := &chaosProc{cmd: exec.Command(r.bin, args...), events: make(chan Event, 256), stderr: &rig.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = Event{Error: fmt.Sprintf("not an event line: %q", sc.Text())}
			}
			p.events <- ev
		}
		p.err = p.cmd.Wait() // after the last read, as StdoutPipe asks
		close(p.done)
		close(p.events)
	}()
	r.t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
		}
		if r.t.Failed() {
			r.t.Logf("skyswap-chaos %q stderr (tail):\n%s", args, p.stderr.Tail(3000))
		}
	})
	return p
}

// next returns its next event, failing after timeout.
func (p *chaosProc) next(t *testing.T, timeout time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-p.events:
		if !ok {
			t.Fatalf("skyswap-chaos ended (%v) without the event expected", p.err)
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event from skyswap-chaos in %v", timeout)
	}
	return Event{}
}

// wait waits for its exit, fails unless it exits 0, and returns the
// events it printed since the last next.
func (p *chaosProc) wait(t *testing.T, timeout time.Duration) []Event {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("skyswap-chaos still runs after %v", timeout)
	}
	if p.err != nil {
		t.Fatalf("skyswap-chaos: %v", p.err)
	}
	var rest []Event
	for ev := range p.events {
		rest = append(rest, ev)
	}
	return rest
}

// single waits for a one-firing skyswap-chaos to end and returns its one
// event, which must have touched v2 (pid v2pid).
func (p *chaosProc) single(t *testing.T, v2pid uint32) Event {
	t.Helper()
	ev := p.next(t, 30*time.Second)
	if !ev.OK || ev.Container != "flight-v2" || ev.Pid != v2pid || ev.Labels["io.skyswap.version"] != "v2" {
		t.Fatalf("event %+v, want flight-v2 (pid %d) touched", ev, v2pid)
	}
	return ev
}

// procState is the state letter of /proc/<pid>/stat (R, S, T...), or 0
// when there is no such process.
func procState(pid uint32) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// cpuCgroupLine is the line of /proc/<pid>/cgroup for the CPU: the v1
// hierarchy with the cpu controller, else the v2 one.
func cpuCgroupLine(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	v2 := ""
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpu") {
			return l
		}
		if strings.HasPrefix(l, "0::") {
			v2 = l
		}
	}
	return v2
}

// TestChaosAgainstContainers runs skyswap-chaos, the built binary, against
// flight v1 (owner) and v2 (candidate) in their containers, selecting v2
// by its labels, and checks that each fault touched v2 and only v2: the
// latency held v2's NATS traffic and not v1's, SIGSTOP stopped v2's
// process and SIGCONT resumed it, the hog ran in v2's CPU cgroup and was
// gone after, the I2C burst failed v2's bus reads and none of v1's, and
// SIGKILL killed v2 while v1 flew on. No bound is on timing: the delays
// are checked against half their length, and each state change gets
// seconds to show.
func TestChaosAgainstContainers(t *testing.T) {
	r := newChaosRig(t)
	ctx := context.Background()

	// The relay runs from the start: the instances reach NATS through it.
	relay := r.chaos("-nats-listen", r.relay, "-nats-upstream", strings.TrimPrefix(r.nats.URL(), "nats://"),
		"-fault", "kind=latency,delay=1500ms,for=3s,every=5s")
	if ev := relay.next(t, 30*time.Second); ev.OK || !strings.Contains(ev.Error, "no container matches io.skyswap.app=flight,io.skyswap.version=v2") {
		t.Fatalf("the first firing, before any container ran: %+v; want ok=false saying nothing matches", ev)
	}
	if err := r.inst.Start(ctx, coordinator.Spec{Instance: "flight-v1", Image: r.refs["v1"], Mode: coordinator.ModeCold, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sim.WaitHover(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.inst.Start(ctx, coordinator.Spec{Instance: "flight-v2", Image: r.refs["v2"], Mode: coordinator.ModeCandidate}); err != nil {
		t.Fatal(err)
	}
	v1, v2 := r.inspect("flight-v1"), r.inspect("flight-v2")
	if v1.Labels["io.skyswap.version"] != "v1" || v2.Labels["io.skyswap.version"] != "v2" {
		t.Fatalf("labels v1 %v, v2 %v: the images' labels are missing", v1.Labels, v2.Labels)
	}

	t.Run("latency", func(t *testing.T) { r.checkLatency(t, relay) })
	t.Run("sigstop", func(t *testing.T) { r.checkSigstop(t, v1, v2) })
	t.Run("hog", func(t *testing.T) { r.checkHog(t, v1, v2) })
	t.Run("i2c", func(t *testing.T) { r.checkI2C(t, v2) })
	t.Run("sigkill", func(t *testing.T) { r.checkSigkill(t, v1, v2) })

	relay.cmd.Process.Signal(syscall.SIGTERM)
	for _, ev := range relay.wait(t, 30*time.Second) {
		if ev.Container == "flight-v1" || (ev.OK && ev.Container != "flight-v2") {
			t.Errorf("the relay's latency fault touched %q: %+v", ev.Container, ev)
		}
	}
}

// checkLatency: during a firing of the relay's latency fault, statuses
// that v2 publishes reach the server late by about the delay; v1's do not.
func (r *chaosRig) checkLatency(t *testing.T, relay *chaosProc) {
	nc, err := nats.Connect(r.nats.URL(), nats.Name("test-observer"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type arrival struct {
		inst      string
		sent, got int64
	}
	var mu sync.Mutex
	var arrivals []arrival
	if _, err := nc.Subscribe("skyswap.flight.status.*", func(m *nats.Msg) {
		got := mono.Now()
		var st handoff.Status
		if json.Unmarshal(m.Data, &st) == nil {
			mu.Lock()
			arrivals = append(arrivals, arrival{st.Instance, st.T, got})
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	// The first firing that found v2's connection (v2 may still have been
	// connecting at the one before).
	var ev Event
	for deadline := time.Now().Add(60 * time.Second); !ev.OK; {
		if ev = relay.next(t, time.Until(deadline)); ev.Container == "flight-v1" {
			t.Fatalf("the latency fault touched v1: %+v", ev)
		}
	}
	if ev.Container != "flight-v2" || ev.Conns < 1 || ev.DelayMs != 1500 || ev.ForMs != 3000 {
		t.Fatalf("event %+v, want v2's connection held 1500 ms for 3 s", ev)
	}
	// Everything sent during the fault is through once it is over.
	time.Sleep(time.Duration(ev.ForMs+ev.DelayMs)*time.Millisecond + time.Second)
	late := map[string]time.Duration{}
	seen := map[string]int{}
	mu.Lock()
	for _, a := range arrivals {
		if a.sent >= ev.MonoNs && a.sent <= ev.MonoNs+ev.ForMs*1e6 {
			late[a.inst] = max(late[a.inst], time.Duration(a.got-a.sent))
			seen[a.inst]++
		}
	}
	mu.Unlock()
	t.Logf("statuses sent during the fault: v1 %d, at most %v late; v2 %d, at most %v late",
		seen["flight-v1"], late["flight-v1"], seen["flight-v2"], late["flight-v2"])
	half := time.Duration(ev.DelayMs) * time.Millisecond / 2
	if seen["flight-v1"] == 0 || seen["flight-v2"] == 0 {
		t.Fatalf("statuses seen: %v; want both instances' (they publish ~20 a second)", seen)
	}
	if late["flight-v2"] < half {
		t.Errorf("v2's statuses were at most %v late, want about the %d ms delay", late["flight-v2"], ev.DelayMs)
	}
	if late["flight-v1"] >= half {
		t.Errorf("v1's statuses were up to %v late under v2's latency fault", late["flight-v1"])
	}
}

// checkSigstop: v2's process shows stopped while the fault lasts, v1's
// never, and v2 runs again after.
func (r *chaosRig) checkSigstop(t *testing.T, v1, v2 containers.Status) {
	p := r.chaos("-fault", "kind=sigstop,for=3s")
	p.single(t, v2.Pid)
	stopped := false
	for !stopped {
		if procState(v2.Pid) == 'T' {
			stopped = true
			if s := procState(v1.Pid); s == 'T' || s == 0 {
				t.Errorf("v1's process in state %q while v2 was stopped", s)
			}
			continue
		}
		select {
		case <-p.done:
			t.Fatalf("skyswap-chaos ended (%v) and v2's process (%d) was never seen stopped", p.err, v2.Pid)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if rest := p.wait(t, 30*time.Second); len(rest) != 0 {
		t.Errorf("more events than the firing: %+v", rest)
	}
	deadline := time.Now().Add(10 * time.Second)
	for procState(v2.Pid) == 'T' {
		if time.Now().After(deadline) {
			t.Fatal("v2 still stopped 10 s after skyswap-chaos ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := procState(v2.Pid); s == 0 {
		t.Fatal("v2's process is gone after SIGSTOP and SIGCONT")
	}
}

// checkHog: the hog runs in v2's CPU cgroup, not v1's, and is gone after.
func (r *chaosRig) checkHog(t *testing.T, v1, v2 containers.Status) {
	want, other := cpuCgroupLine(t, int(v2.Pid)), cpuCgroupLine(t, int(v1.Pid))
	if want == other {
		t.Fatalf("v1 and v2 share the CPU cgroup %q: the test cannot tell them apart", want)
	}
	p := r.chaos("-fault", "kind=hog,for=4s")
	ev := p.single(t, v2.Pid)
	if len(ev.HogPids) != 1 || ev.CPUs != 1 || ev.Cgroup == "" {
		t.Fatalf("event %+v, want one hog and its cgroup", ev)
	}
	t.Logf("hog %v in %s (v2: %s)", ev.HogPids, ev.Cgroup, want)
	procsFile := filepath.Join(ev.Cgroup, "cgroup.procs")
	for _, pid := range ev.HogPids {
		if got := cpuCgroupLine(t, pid); got != want {
			t.Errorf("hog %d in cgroup %q, want v2's %q", pid, got, want)
		}
		if procs, _ := os.ReadFile(procsFile); !containsLine(string(procs), pid) {
			t.Errorf("%s does not list hog %d: %q", procsFile, pid, procs)
		}
	}
	p.wait(t, 30*time.Second)
	procs, err := os.ReadFile(procsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range ev.HogPids {
		if alive(pid) || containsLine(string(procs), pid) {
			t.Errorf("hog %d still there after skyswap-chaos ended (alive %v)", pid, alive(pid))
		}
	}
	if !r.inspect("flight-v2").Running {
		t.Error("v2 stopped running under the hog")
	}
}

// checkI2C: the burst failed v2's IMU reads and none of v1's, and ended.
func (r *chaosRig) checkI2C(t *testing.T, v2 containers.Status) {
	before := i2cFaults(t, r.sim.HTTP)
	p := r.chaos("-sim", "http://"+r.sim.HTTP, "-fault", "kind=i2c,for=2s,rate=0.5,addr=0x68")
	ev := p.single(t, v2.Pid)
	if ev.Rate != 0.5 || ev.Addr != "0x68" {
		t.Errorf("event %+v, want rate 0.5 at 0x68", ev)
	}
	p.wait(t, 30*time.Second)
	after := i2cFaults(t, r.sim.HTTP)
	t.Logf("the burst failed %d of v2's IMU reads", after.ByClient["flight-v2"]-before.ByClient["flight-v2"])
	if after.ByClient["flight-v2"] <= before.ByClient["flight-v2"] {
		t.Errorf("no read of v2's failed: %+v", after)
	}
	if after.ByClient["flight-v1"] != before.ByClient["flight-v1"] {
		t.Errorf("v1's reads failed too: %+v", after)
	}
	if len(after.Active) != 0 {
		t.Errorf("bursts still on after skyswap-chaos ended: %+v", after.Active)
	}
}

// checkSigkill: v2 exits killed; v1 is the same process and still drives
// the motors.
func (r *chaosRig) checkSigkill(t *testing.T, v1, v2 containers.Status) {
	from := mono.Now()
	p := r.chaos("-fault", "kind=sigkill")
	p.single(t, v2.Pid)
	p.wait(t, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for st := r.inspect("flight-v2"); !st.Exited; st = r.inspect("flight-v2") {
		if time.Now().After(deadline) {
			t.Fatalf("v2 not exited 10 s after SIGKILL: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := r.inspect("flight-v2"); st.ExitCode != 128+uint32(syscall.SIGKILL) {
		t.Errorf("v2 exited with %d, want 137 (SIGKILL)", st.ExitCode)
	}
	time.Sleep(500 * time.Millisecond)
	if st := r.inspect("flight-v1"); !st.Running || st.Pid != v1.Pid {
		t.Fatalf("v1 after v2's kill: %+v, want the same process (%d) running", st, v1.Pid)
	}
	rep, err := r.sim.Report(context.Background(), from, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Crashed || !rep.Airborne || rep.Updates == 0 || len(rep.Writers) != 1 || rep.Writers[0] != "flight-v1" {
		t.Errorf("after v2's kill: crashed %v, airborne %v, %d updates by %v; want v1 flying on", rep.Crashed, rep.Airborne, rep.Updates, rep.Writers)
	}
}
