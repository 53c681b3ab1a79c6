package agent

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/images/build/buildtest"
	"github.com/skyswap/skyswap/loopback"
	"github.com/skyswap/skyswap/rig"
)

// agentRig is a drone on one machine for the agent's end-to-end tests: a
// real mosquitto, releases v1 and v2 in a loopback registry, the virtual
// drone, and the agent's configuration; the ground side sends signed
// commands and reads events.
type agentRig struct {
	t      *testing.T
	m      *brokertest.Mosquitto
	reg    *buildtest.Registry
	refs   map[string]string        // by version; every image in it is removed at the end
	idx    map[string]v1.ImageIndex // by version
	sent   map[string][]byte        // command payloads by id
	sim    *rig.Sim
	cfg    DaemonConfig
	kid    string
	priv   ed25519.PrivateKey
	ground *brokertest.Peer
	events <-chan brokertest.Message
	states <-chan brokertest.Message
	camera <-chan brokertest.Message
	n      int
}

const testNamespace = "skyswap-test-agent"

// rigOpts are an agentRig's flight settings; the zero value is a 400 Hz
// hover in 0.5 N gusts.
type rigOpts struct {
	rateHz int      // the flight loop's and the referee's rate; 0 = 400
	gustN  float64  // gust force, N; 0 = 0.5
	simEnv []string // more SIM_* settings
	// realTime flies as a drone is deployed (deploy/README.md): the
	// simulator and the flight loop under SCHED_FIFO, and the agent's grant
	// of real-time time, all as the soak does (rig.RealTimeEnv); false =
	// ordinary scheduling.
	realTime bool
}

func newAgentRig(t *testing.T, opts ...rigOpts) *agentRig {
	t.Helper()
	var o rigOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	o.rateHz, o.gustN = cmp.Or(o.rateHz, 400), cmp.Or(o.gustN, 0.5)
	if os.Geteuid() != 0 {
		containerstest.SkipOrFail(t, "the agent test needs root (containerd)")
	}
	if _, err := os.Stat(containers.DefaultSocket); err != nil {
		containerstest.SkipOrFail(t, "no containerd socket at %s: run scripts/dev-setup.sh containerd", containers.DefaultSocket)
	}
	r := &agentRig{t: t, m: brokertest.Start(t, nil), refs: map[string]string{}, idx: map[string]v1.ImageIndex{}, sent: map[string][]byte{}}
	ctx := context.Background()
	r.reg = buildtest.NewRegistry(t, "..")
	r.push(build.Config{Version: "v1"})
	r.push(build.Config{Version: "v2"})
	bins, err := rig.Build(ctx, t.TempDir(), "", "host")
	if err != nil {
		t.Fatal(err)
	}
	simDir, err := os.MkdirTemp("", "skyswap-sim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(simDir) })
	os.Chmod(simDir, 0o755) // the containers' user must reach the socket
	if o.realTime {
		o.simEnv = append(o.simEnv, rig.RealTimeEnv.Sim...)
	}
	if r.sim, err = rig.StartSim(ctx, bins.Sim, simDir, append([]string{fmt.Sprintf("SIM_GUST_N=%g", o.gustN), "SIM_GUST_NM=0.01", "SIM_NOISE=1",
		fmt.Sprintf("SIM_TICK_HZ=%d", o.rateHz)}, o.simEnv...), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sim.Stop() })

	pub, priv, err := command.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r.kid, r.priv = command.KeyID(pub), priv
	natsAddr, err := loopback.Addr()
	if err != nil {
		t.Fatal(err)
	}
	var port int
	fmt.Sscanf(natsAddr[strings.LastIndex(natsAddr, ":")+1:], "%d", &port)
	logDir := t.TempDir()
	r.cfg = DaemonConfig{
		Drone: "d1", BrokerURL: r.m.URL, TrustedKeys: r.kid + "=" + base64.StdEncoding.EncodeToString(pub),
		StateDir: t.TempDir(), Namespace: testNamespace, LogDir: logDir, PlainHTTP: r.reg.Host, NATSPort: port, App: "flight",
		AppEnv: "FLIGHT_BUS=sim:/run/skyswap-sim/" + filepath.Base(r.sim.Socket) + ";FLIGHT_PATTERN=hover;FLIGHT_ON_TERM=exit;FLIGHT_RATE_HZ=" + strconv.Itoa(o.rateHz),
		Mounts: simDir + ":/run/skyswap-sim", Lease: "sim:" + r.sim.Socket, Grace: 5, Probation: 2,
	}
	t.Cleanup(func() {
		// Leave nothing running in the test namespace.
		c, err := containers.Open(context.Background(), containers.Config{Namespace: testNamespace, LogDir: logDir})
		if err != nil {
			return
		}
		defer c.Close()
		list, _ := c.List(context.Background())
		for _, s := range list {
			c.Stop(context.Background(), s.ID, time.Second)
			c.Remove(context.Background(), s.ID)
		}
		for _, ref := range r.refs {
			c.RemoveImage(context.Background(), ref)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, logDir)
		}
	})
	if o.realTime {
		r.asDeployed()
	}
	r.ground = r.m.Peer(t, "")
	r.events = r.ground.MustSubscribe(t, "fleet/d1/events", 1)
	r.states = r.ground.MustSubscribe(t, "fleet/d1/state", 1)
	r.camera = r.ground.MustSubscribe(t, "fleet/d1/camera", 0)
	return r
}

// asDeployed gives the flight and the agent rig.RealTimeEnv's settings
// (rigOpts.realTime; the simulator's come at its start).
func (r *agentRig) asDeployed() {
	r.t.Helper()
	r.cfg.AppEnv += ";" + strings.Join(rig.RealTimeEnv.App, ";")
	for _, kv := range rig.RealTimeEnv.Agent {
		k, v, _ := strings.Cut(kv, "=")
		if k != "AGENT_APP_RT_MS" {
			r.t.Fatalf("rig.RealTimeEnv.Agent: %s: the rig sets DaemonConfig from AGENT_APP_RT_MS only", kv)
		}
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil {
			r.t.Fatalf("rig.RealTimeEnv.Agent: %s: %v", kv, err)
		}
		r.cfg.AppRTMs = ms
	}
}

// runDaemon runs drone-agent in this process until the test ends (or
// stop) and waits until it is online.
func (r *agentRig) runDaemon() (stop func()) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDaemon(ctx, r.cfg, slog.New(slog.NewTextHandler(tlog{r.t}, nil))) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	r.t.Cleanup(stop)
	r.awaitOnline(done)
	return stop
}

// deploy sends the first update, of image, and waits until it flies
// (deployed); it returns that event.
func (r *agentRig) deploy(image string) Event {
	r.t.Helper()
	id := r.send(command.KindUpdate, image)
	e := r.await(id, 60*time.Second, "deployed", "refused", "failed")
	if e.Phase != "deployed" {
		r.t.Fatalf("deploy: %+v", e)
	}
	return e
}

// awaitOnline waits for the agent's retained online state (it is then
// subscribed to commands).
func (r *agentRig) awaitOnline(died <-chan error) {
	r.t.Helper()
	for {
		select {
		case msg := <-r.states:
			if strings.Contains(string(msg.Payload), `"online":true`) {
				return
			}
		case err := <-died:
			r.t.Fatalf("drone-agent stopped: %v", err)
		case <-time.After(30 * time.Second):
			r.t.Fatal("the drone never reported online")
		}
	}
}

// push builds and pushes an image to the rig's registry, under the
// version cfg names.
func (r *agentRig) push(cfg build.Config) string {
	r.t.Helper()
	r.refs[cfg.Version], r.idx[cfg.Version] = r.reg.Push(r.t, cfg)
	return r.refs[cfg.Version]
}

// command is a new command of kind for image, valid for five minutes.
func (r *agentRig) command(kind command.Kind, image string) command.Command {
	r.n++
	return command.Command{ID: fmt.Sprintf("cmd-%d", r.n), Kind: kind, Drone: "d1", App: "flight", Image: image,
		Issued: time.Now().UTC().Truncate(time.Second), Expires: time.Now().UTC().Add(5 * time.Minute).Truncate(time.Second)}
}

// sign signs c with key (the trusted one if nil) and returns the payload.
func (r *agentRig) sign(c command.Command, key ed25519.PrivateKey) []byte {
	r.t.Helper()
	if key == nil {
		key = r.priv
	}
	s, err := command.Sign(c, r.kid, key)
	if err != nil {
		r.t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	return b
}

// publish sends a payload on the drone's command topic.
func (r *agentRig) publish(payload []byte) {
	r.t.Helper()
	r.ground.MustPublish(r.t, "fleet/d1/cmd", 1, false, payload)
}

func (r *agentRig) send(kind command.Kind, image string) string {
	r.t.Helper()
	c := r.command(kind, image)
	b := r.sign(c, nil)
	r.sent[c.ID] = b
	r.publish(b)
	return c.ID
}

// await returns the first event (of command id, or any if id is "") in
// one of phases.
func (r *agentRig) await(id string, timeout time.Duration, phases ...string) Event {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case msg := <-r.events:
			var e Event
			json.Unmarshal(msg.Payload, &e)
			r.t.Logf("event %s %s %s %s", e.Command, e.Phase, e.Outcome, e.Error)
			if id == "" || e.Command == id {
				for _, p := range phases {
					if e.Phase == p {
						return e
					}
				}
			}
		case <-deadline:
			r.t.Fatalf("no %v event for %q within %v", phases, id, timeout)
		}
	}
}

// update sends an update (or rollback) and waits for its commit. An abort
// leaves the owner flying untouched and is retried twice: on a loaded
// machine the cut-over frame can arrive too late for the candidate. So is
// a take-back by the standby in probation.
func (r *agentRig) update(kind command.Kind, image string) Event {
	r.t.Helper()
	id := r.send(kind, image)
	e := r.await(id, 90*time.Second, "result", "refused")
	if e.Phase != "result" || e.Outcome != "committed" {
		r.t.Fatalf("%s: %+v", kind, e)
	}
	return e
}

// TestAgentEndToEnd is the product path on one machine: the ground sends
// signed commands over a real mosquitto; drone-agent deploys flight v1 from
// a registry through containerd (it takes off from the ground), updates it
// to v2 in the air by hand-over, refuses a forged command, and rolls back to
// v1. The virtual drone's referee judges the flight.
func TestAgentEndToEnd(t *testing.T) {
	r := newAgentRig(t)
	ctx := context.Background()
	r.runDaemon()

	// Deploy v1: it takes off from the ground.
	r.deploy(r.refs["v1"])
	hover, err := r.sim.WaitHover(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)

	// Update to v2 in the air: v2 brings the camera.
	if n := len(r.camera); n != 0 {
		t.Fatalf("%d camera frames from v1, which has no camera", n)
	}
	v2 := r.update(command.KindUpdate, r.refs["v2"])
	r.checkCamera(ctx, v2.To)

	// A command signed by an unknown key is refused.
	c := command.Command{ID: "rogue", Kind: command.KindUpdate, Drone: "d1", App: "flight", Image: r.refs["v1"],
		Issued: time.Now().UTC().Truncate(time.Second), Expires: time.Now().UTC().Add(time.Minute).Truncate(time.Second)}
	_, other, _ := command.GenerateKey()
	s, _ := command.Sign(c, r.kid, other)
	b, _ := json.Marshal(s)
	r.ground.MustPublish(t, "fleet/d1/cmd", 1, false, b)
	if e := r.await("rogue", 10*time.Second, "refused"); !strings.Contains(e.Error, "signature") {
		t.Fatalf("rogue: %+v", e)
	}

	// Roll back to v1, the same way.
	r.update(command.KindRollback, "")
	time.Sleep(300 * time.Millisecond)
	rep, err := r.sim.Report(ctx, hover, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("flight through two updates: writers %v, gap max %.2f ms p99 %.2f ms, double drive %d, stale %d",
		rep.Writers, rep.MaxGapMs, rep.P99GapMs, rep.DoubleDrive, rep.StaleRefused)
	// v1's release runs again after the rollback under the same instance
	// name: two writers, two switches.
	if rep.Crashed || !rep.Airborne || rep.DoubleDrive != 0 || len(rep.Writers) != 2 || rep.WriterSwitches != 2 {
		t.Fatalf("referee: %+v", rep)
	}
}

// TestAgentRealTime flies as a drone is deployed (deploy/README.md): the
// flight loop asks for SCHED_FIFO (FLIGHT_RT_PRIO) and the agent grants it
// (AGENT_APP_RT_MS). Both instances of an update run their control thread
// under SCHED_FIFO, the hand-over commits with the referee content, and
// the retired instance's real-time time goes back.
func TestAgentRealTime(t *testing.T) {
	r := newAgentRig(t, rigOpts{realTime: true})
	ctx := context.Background()
	r.runDaemon()
	v1 := r.deploy(r.refs["v1"])
	hover, err := r.sim.WaitHover(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.checkFIFO(v1.To)
	v2 := r.update(command.KindUpdate, r.refs["v2"])
	r.checkFIFO(v2.To)
	r.onlyOneRunning(v2.To)
	// Every drone-sim thread at SIM_RT_PRIO, not only the physics and
	// bus threads: the others run Go's scheduler for them (mono.Helpers).
	if prios := threadPriorities(t, r.sim.Pid()); len(prios) != 1 || prios[fifoKey(60)] == 0 {
		t.Errorf("drone-sim (pid %d): threads by policy/priority %v, want all SCHED_FIFO (1) at 60", r.sim.Pid(), prios)
	}
	rep, err := r.sim.Report(ctx, hover, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("under SCHED_FIFO: gap max %.2f ms p99 %.2f ms, takebacks %d", rep.MaxGapMs, rep.P99GapMs, rep.Takebacks)
	if rep.Crashed || rep.DoubleDrive != 0 || rep.FalseTakebacks != 0 || rep.WriterSwitches != 1 {
		t.Fatalf("referee: %+v", rep)
	}
	for _, l := range []string{v1.To, v2.To} {
		if b, _ := os.ReadFile(containers.LogFile(r.cfg.LogDir, l)); bytes.Contains(b, []byte("without real-time priority")) || bytes.Contains(b, []byte("under ordinary scheduling")) {
			t.Errorf("%s ran without real-time priority:\n%s", l, b)
		}
	}
	// cgroup v1 with real-time groups: the namespace holds v2's time only.
	// v1's is given back a period after it stopped (containers' rtBudget).
	group := filepath.Join("/sys/fs/cgroup/cpu", testNamespace)
	if _, err := os.Stat(filepath.Join(group, "cpu.rt_runtime_us")); err == nil {
		if got := containerstest.AwaitRealTime(t, group, "300000"); got != "300000" {
			t.Errorf("10 s after the update the namespace's group holds %s µs per second, want 300000 (v2's alone)", got)
		}
	}
}

// checkFIFO checks that instance's process runs under SCHED_FIFO as
// deployed: its control loop at FLIGHT_RT_PRIO (it owns the drone), every
// other thread at the lowest priority (app.Config.helperPriority).
func (r *agentRig) checkFIFO(instance string) {
	r.t.Helper()
	c, err := containers.Open(context.Background(), containers.Config{Namespace: testNamespace, LogDir: r.cfg.LogDir})
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Inspect(context.Background(), instance)
	if err != nil || st.Pid == 0 {
		r.t.Fatalf("inspect %s: %+v, %v", instance, st, err)
	}
	prios := threadPriorities(r.t, int(st.Pid))
	if len(prios) != 2 || prios[fifoKey(50)] != 1 || prios[fifoKey(mono.HelperPriority)] == 0 {
		r.t.Errorf("%s (pid %d): threads by policy/priority %v, want one SCHED_FIFO (1) at 50, the rest at 1", instance, st.Pid, prios)
	}
}

// fifoKey is threadPriorities' key for SCHED_FIFO (policy 1) at prio.
func fifoKey(prio int) string { return fmt.Sprintf("1/%d", prio) }

// threadPriorities counts pid's threads by "policy/priority" as
// /proc/<pid>/task/*/stat shows them (SCHED_FIFO is policy 1).
func threadPriorities(t testing.TB, pid int) map[string]int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of pid %d: %d, %v", pid, len(tasks), err)
	}
	prios := map[string]int{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command's closing parenthesis start at field 3
		// (state); the real-time priority is field 40, the policy 41.
		rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(rest) > 38 {
			prios[rest[38]+"/"+rest[37]]++
		}
	}
	return prios
}

// TestAgentLostStateDir: the drone's state directory is lost (reflashed,
// corrupted) while containerd still flies the app. The restarted agent
// adopts the flying instance from what containerd holds: a push of the
// same release is refused as already flying (not failed on a name that
// exists), and an update hands over from it; nothing else is left running.
func TestAgentLostStateDir(t *testing.T) {
	r := newAgentRig(t)
	ctx := context.Background()
	stop := r.runDaemon()
	v1 := r.deploy(r.refs["v1"])
	if _, err := r.sim.WaitHover(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := os.RemoveAll(r.cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	r.runDaemon()
	if e := r.await("", 30*time.Second, "recovered"); e.To != v1.To {
		t.Fatalf("recovered %+v, want %s adopted", e, v1.To)
	}
	id := r.send(command.KindUpdate, r.refs["v1"])
	if e := r.await(id, 60*time.Second, "refused", "result", "deployed", "failed"); e.Phase != "refused" ||
		!strings.Contains(e.Error, "already committed and flying") {
		t.Fatalf("push of the flying release: %+v", e)
	}
	r.onlyOneRunning(v1.To)
	v2 := r.update(command.KindUpdate, r.refs["v2"])
	if v2.From != v1.To {
		t.Fatalf("update %+v, want a hand-over from the adopted %s", v2, v1.To)
	}
	r.onlyOneRunning(v2.To)
}

// TestAgentKilledMidUpdate kills drone-agent with SIGKILL while an update
// is shadowing and, in a second round, in probation. After a restart
// exactly one instance flies, the other container is gone, and the outcome
// is reported on events.
func TestAgentKilledMidUpdate(t *testing.T) {
	r := newAgentRig(t)
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "drone-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/drone-agent").CombinedOutput(); err != nil {
		t.Fatalf("build drone-agent: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"AGENT_DRONE="+r.cfg.Drone, "AGENT_BROKER_URL="+r.cfg.BrokerURL, "AGENT_TRUSTED_KEYS="+r.cfg.TrustedKeys,
		"AGENT_STATE_DIR="+r.cfg.StateDir, "AGENT_NAMESPACE="+r.cfg.Namespace, "AGENT_LOG_DIR="+r.cfg.LogDir,
		"AGENT_PLAIN_HTTP="+r.cfg.PlainHTTP, fmt.Sprintf("AGENT_NATS_PORT=%d", r.cfg.NATSPort), "AGENT_APP_ENV="+r.cfg.AppEnv,
		"AGENT_MOUNTS="+r.cfg.Mounts, "AGENT_LEASE="+r.cfg.Lease, "AGENT_GRACE_S=5", "AGENT_PROBATION_S=20")
	var logs rig.LogBuffer
	start := func() (*exec.Cmd, <-chan error) {
		cmd := exec.Command(bin)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		died := make(chan error, 1)
		go func() { died <- cmd.Wait() }()
		r.awaitOnline(died)
		return cmd, died
	}
	defer func() {
		if t.Failed() {
			t.Logf("agent logs:\n%s", logs.Tail(6000))
		}
	}()
	agent, died := start()
	defer func() { agent.Process.Kill() }()
	id := r.send(command.KindUpdate, r.refs["v1"])
	if e := r.await(id, 60*time.Second, "deployed", "refused", "failed"); e.Phase != "deployed" {
		t.Fatalf("deploy: %+v", e)
	}
	if _, err := r.sim.WaitHover(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	images := map[string]string{"shadow": r.refs["v2"], "probation": r.refs["v1"]}
	for _, phase := range []string{"shadow", "probation"} {
		// Alternate the release so each round is a real update.
		if phase == "probation" {
			// After round one, whichever release flies, update to the other.
			images["probation"] = r.refs["v2"]
			if st := r.committed(); st == r.refs["v2"] {
				images["probation"] = r.refs["v1"]
			}
		}
		for try := 1; ; try++ {
			id := r.send(command.KindUpdate, images[phase])
			e := r.await(id, 60*time.Second, phase, "result", "refused")
			if e.Phase == phase {
				break
			}
			// A safe abort before the phase (a loaded machine): again.
			if e.Outcome != "aborted" || try == 3 {
				t.Fatalf("update before the kill in %s: %+v", phase, e)
			}
		}
		agent.Process.Signal(syscall.SIGKILL)
		<-died
		t.Logf("SIGKILL in %s", phase)
		from := mono.Now()
		agent, died = start()
		e := r.await("", 30*time.Second, "recovered")
		t.Logf("recovered after a kill in %s: keep %s, outcome %q", phase, e.To, e.Outcome)
		if e.To == "" || e.Outcome == "" {
			t.Fatalf("recovery event %+v", e)
		}
		r.onlyOneRunning(e.To)
		time.Sleep(time.Second)
		rep, err := r.sim.Report(ctx, from, mono.Now())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Crashed || !rep.Airborne || rep.DoubleDrive != 0 || len(rep.Writers) != 1 || rep.Writers[0] != e.To {
			t.Fatalf("after recovery: %+v", rep)
		}
	}
}

// committed is the image in the agent's latest retained state.
func (r *agentRig) committed() string {
	var last string
	for {
		select {
		case msg := <-r.states:
			var s StateReport
			if json.Unmarshal(msg.Payload, &s) == nil && s.Committed["flight"] != "" {
				last = s.Committed["flight"]
			}
		default:
			return last
		}
	}
}

// onlyOneRunning checks the test namespace holds exactly keep, running.
func (r *agentRig) onlyOneRunning(keep string) {
	r.t.Helper()
	c, err := containers.Open(context.Background(), containers.Config{Namespace: testNamespace, LogDir: r.cfg.LogDir})
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	list, err := c.List(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != keep || !list[0].Running {
		r.t.Fatalf("containers: %+v, want only %s running", list, keep)
	}
}

// tlog writes the agent's log into the test's.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// dumpLogs logs the tail of every container log in dir: what the flight
// instances said, for a failed test.
func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		t.Logf("%s (tail):\n%s", filepath.Base(l), b)
	}
}
