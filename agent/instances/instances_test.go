package instances

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/handoff/coordinator"
	"github.com/skyswap/skyswap/handoff/onboard"
	"github.com/skyswap/skyswap/hw/bus"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/images/build/buildtest"
	"github.com/skyswap/skyswap/rig"
)

// TestFlightHandoverInContainers flies flight v1 in a container against the
// virtual drone and hands it over to flight v2 in another container: the
// images are built without Docker, served by a registry on loopback and
// pulled by containerd (v2 fetches only its changed layer); the containers
// are unprivileged with a read-only root, reaching the drone through a bind
// mount of its socket and the on-board NATS on the host's loopback. The
// referee judges the cut-over.
func TestFlightHandoverInContainers(t *testing.T) {
	if os.Geteuid() != 0 {
		containerstest.SkipOrFail(t, "containerd tests need root")
	}
	ctx := context.Background()
	logDir := t.TempDir()
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := containers.Open(octx, containers.Config{Namespace: "skyswap-test-instances", LogDir: logDir})
	cancel()
	if err != nil {
		containerstest.SkipOrFail(t, "%v", err)
	}
	defer c.Close()

	// Images v1 and v2 for this machine's platform, pushed to a registry.
	host, refs, idxs := buildtest.Releases(t, "../..", "v1", "v2")
	c.Close()
	octx, cancel = context.WithTimeout(ctx, 10*time.Second)
	c, err = containers.Open(octx, containers.Config{Namespace: "skyswap-test-instances", LogDir: logDir, PlainHTTP: []string{host}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	diff, err := build.LayerDiff(idxs[0], idxs[1], v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	changed := diff.AddedBytes()
	var fetched = map[string]int64{}
	for _, v := range []string{"v1", "v2"} {
		img, err := c.Pull(ctx, refs[v], nil)
		if err != nil {
			t.Fatal(err)
		}
		fetched[v] = img.Fetched
		if img.Labels["io.skyswap.state-schemas"] != "flight.state/1" {
			t.Fatalf("%s labels: %v", v, img.Labels)
		}
	}
	t.Logf("pulled v1: %d bytes; v2 then fetched %d bytes for a changed layer of %d bytes", fetched["v1"], fetched["v2"], changed)
	// Only the changed layer, plus the index, manifest and config (a few KiB).
	if fetched["v2"] < changed || fetched["v2"] > changed+16<<10 {
		t.Errorf("v2 fetched %d bytes; its changed layer is %d bytes", fetched["v2"], changed)
	}
	defer func() {
		for _, v := range refs {
			c.RemoveImage(context.Background(), v)
		}
	}()

	// The virtual drone and the on-board NATS, on the host.
	bins, err := rig.Build(ctx, t.TempDir(), "", "host")
	if err != nil {
		t.Fatal(err)
	}
	simDir, err := os.MkdirTemp("", "skyswap-sim-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(simDir)
	os.Chmod(simDir, 0o755) // the containers' user must reach the socket
	sim, err := rig.StartSim(ctx, bins.Sim, simDir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()
	ns, err := onboard.Start(onboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()

	rt := New(c, Config{
		Env: []string{"FLIGHT_BUS=sim:/run/skyswap-sim/" + filepath.Base(sim.Socket), "FLIGHT_NATS=" + ns.URL(),
			"FLIGHT_PATTERN=hover", "FLIGHT_ON_TERM=exit"},
		Mounts: []containers.Mount{{Source: simDir, Target: "/run/skyswap-sim"}},
		Grace:  5 * time.Second,
	})
	defer func() {
		for _, id := range []string{"flight-v1", "flight-v2"} {
			rt.Stop(context.Background(), id)
		}
		if t.Failed() {
			for _, id := range []string{"flight-v1", "flight-v2"} {
				b, _ := os.ReadFile(containers.LogFile(logDir, id))
				t.Logf("%s log (tail):\n%s", id, tail(string(b), 2000))
			}
		}
	}()
	t0 := mono.Now()
	if err := rt.Start(ctx, coordinator.Spec{Instance: "flight-v1", Image: refs["v1"], Mode: coordinator.ModeCold, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	hover, err := sim.WaitHover(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("v1 in a container took off in %.1f s", float64(hover-t0)/1e9)

	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ls, err := bus.OpenLease(ctx, "sim:"+sim.Socket, "coordinator")
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	coord, err := coordinator.New(nc, rt, coordinator.Config{App: "flight", Lease: ls})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	time.Sleep(time.Second)
	res, err := coord.Run(ctx, coordinator.Plan{Owner: "flight-v1", Candidate: "flight-v2", Image: refs["v2"], Probation: 2 * time.Second,
		Accepts: []string{"flight.state/1"}})
	if err != nil || res.Outcome != report.OutcomeCommitted {
		t.Fatalf("outcome %q (%s): %v", res.Outcome, res.Reason, err)
	}
	t.Logf("hand-over between containers: candidate start %.0f ms, synced after %.0f ms, committed %.0f ms after cut-over",
		res.StartMs, res.SyncMs, res.ToCommitMs)
	time.Sleep(300 * time.Millisecond)
	w, err := sim.Report(ctx, res.CutoverNs-int64(100*time.Millisecond), res.CutoverNs+int64(150*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	all, err := sim.Report(ctx, hover, mono.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cut-over window: gap max %.2f ms; whole flight: gap max %.2f p99 %.2f ms, writers %v", w.MaxGapMs, all.MaxGapMs, all.P99GapMs, all.Writers)
	if all.DoubleDrive != 0 || all.Crashed || !all.Airborne {
		t.Fatalf("double drive %d, crashed %v, airborne %v", all.DoubleDrive, all.Crashed, all.Airborne)
	}
	// One cut-over by release (the gaps are the bench's to judge: this
	// machine's load shows in them, not the hand-over).
	if len(all.Writers) != 2 || all.Writers[1] != "flight-v2" || all.WriterSwitches != 1 || all.Takebacks != 0 {
		t.Fatalf("writers %v, %d switches, %d take-backs: want one cut-over by release from flight-v1 to flight-v2",
			all.Writers, all.WriterSwitches, all.Takebacks)
	}
	if st, err := c.Inspect(ctx, "flight-v1"); err == nil {
		t.Fatalf("the retired v1 container is still there: %+v", st)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
