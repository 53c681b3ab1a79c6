package agent

import (
	"context"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/hw/lease"
	"github.com/skyswap/skyswap/hw/mono"
	"github.com/skyswap/skyswap/rig"
)

// TestAgentUpdatesAwayFromTheTunedPoint: updates through the real agent
// commit at a rate other than the one the hand-over was first tuned at
// (1000 Hz, where a tick is 1 ms and the scheduler's noise is many ticks),
// and at 400 Hz with a workload busy-looping on every core beside the
// flight (in its own cgroup, as rig.Hog explains). Each update
// must commit (the agent may retry a safe abort itself; nothing here
// does); the referee sees one clean writer switch per update: no double
// drive, no take-back.
//
// Beside the hog the flight runs as a drone is deployed, under SCHED_FIFO
// (rigOpts.realTime), as the soak's hog cases do. Under ordinary
// scheduling nothing bounds how long a busy machine keeps the loop
// waiting: its thread sat runnable 58 ms beside the hog (traced), and a
// new owner fell silent 102 ms, past the holder timeout, so the standby
// rightly took back (docs/ARCHITECTURE.md, "Scheduling").
func TestAgentUpdatesAwayFromTheTunedPoint(t *testing.T) {
	cases := []struct {
		name string
		opts rigOpts
		hogs int // busy-looping processes beside the flight
	}{
		{"1000 Hz in 1 N gusts", rigOpts{rateHz: 1000, gustN: 1}, 0},
		{"400 Hz in 1 N gusts beside a CPU hog, as deployed", rigOpts{rateHz: 400, gustN: 1, realTime: true}, runtime.NumCPU()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newAgentRig(t, tc.opts)
			ctx := context.Background()
			r.runDaemon()
			r.deploy(r.refs["v1"])
			if _, err := r.sim.WaitHover(ctx, 60*time.Second); err != nil {
				t.Fatal(err)
			}
			stop, err := rig.Hog(tc.hogs)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			from := mono.Now()
			const updates = 4
			for i := range updates {
				v := []string{"v2", "v1"}[i%2]
				sent := mono.Now()
				id := r.send(command.KindUpdate, r.refs[v])
				e := r.await(id, 120*time.Second, "result", "refused")
				if e.Outcome != "committed" {
					rep := r.report(t, sent)
					t.Fatalf("update %d to %s: %+v\nreferee since the command: %+v", i+1, v, e, rep)
				}
				t.Logf("update %d to %s: committed at epoch %d, tick %d", i+1, v, e.Epoch, e.Tick)
			}
			rep := r.report(t, from)
			t.Logf("referee: writers %v, switches %d, take-backs %d (false %d), max gap %.2f ms, double drive %d",
				rep.Writers, rep.WriterSwitches, rep.Takebacks, rep.FalseTakebacks, rep.MaxGapMs, rep.DoubleDrive)
			if rep.Crashed || !rep.Airborne || rep.DoubleDrive != 0 || rep.Takebacks != 0 || rep.WriterSwitches != updates {
				t.Fatalf("referee over the updates: %+v; want %d clean writer switches", rep, updates)
			}
		})
	}
}

// TestAgentOwnerKilled: the new owner is SIGKILLed in probation. The
// standby reads the lease, sees its writes stop, and takes back within the
// holder timeout (lease.HolderTimeout) plus its own tick; the bound here
// leaves as much again for a loaded machine's scheduler. The update ends
// reverted, the killed instance's container is removed, v1 flies on.
func TestAgentOwnerKilled(t *testing.T) {
	r := newAgentRig(t)
	r.cfg.Probation = 10 // long enough to be killed in
	ctx := context.Background()
	r.runDaemon()
	v1inst := r.deploy(r.refs["v1"]).To
	if _, err := r.sim.WaitHover(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	from := mono.Now()
	id := r.send(command.KindUpdate, r.refs["v2"])
	cand := r.await(id, 120*time.Second, "probation", "result", "refused").To
	time.Sleep(500 * time.Millisecond) // flying under v2
	killTask(t, r, cand)
	e := r.await(id, 60*time.Second, "result")
	if e.Outcome != "reverted" || !strings.Contains(e.Error, "took back") {
		t.Fatalf("result %+v, want reverted: the standby took back", e)
	}
	gap := takeBackGap(t, r, from, cand, v1inst)
	t.Logf("the standby took back %.1f ms after the killed owner's last motor update (holder timeout %v)", gap, lease.HolderTimeout)
	if limit := 2 * lease.HolderTimeout; gap > float64(limit.Milliseconds()) {
		t.Errorf("take-back %.1f ms after the last write, want within %v", gap, limit)
	}
	if gap < float64(lease.HolderTimeout.Milliseconds()) {
		t.Errorf("take-back %.1f ms after the last write: before the holder timeout %v", gap, lease.HolderTimeout)
	}
	r.onlyOneRunning(v1inst)
	rep := r.report(t, from)
	if rep.Crashed || rep.DoubleDrive != 0 || rep.Takebacks != 1 || rep.FalseTakebacks != 0 {
		t.Fatalf("referee: %+v, want one justified take-back", rep)
	}
}

// killTask sends SIGKILL to instance's container process.
func killTask(t *testing.T, r *agentRig, instance string) {
	t.Helper()
	c, err := containers.Open(context.Background(), containers.Config{Namespace: testNamespace, LogDir: r.cfg.LogDir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Inspect(context.Background(), instance)
	if err != nil || st.Pid == 0 {
		t.Fatalf("inspect %s: %+v, %v", instance, st, err)
	}
	if err := syscall.Kill(int(st.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
