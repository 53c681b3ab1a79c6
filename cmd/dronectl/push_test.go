package main

import (
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker/brokertest"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push/pushtest"
)

// ground is a key pair made by dronectl keygen.
func ground(t *testing.T) (keyFile string, pub ed25519.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	if code, _, errOut := dronectl(t, "keygen", "-out", dir); code != 0 {
		t.Fatal(errOut)
	}
	pub, err := command.ReadPublicKey(filepath.Join(dir, "ground.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "ground.key"), pub
}

func TestPushFlags(t *testing.T) {
	key, _ := ground(t)
	env := map[string]string{"DRONECTL_BROKER": "tcp://127.0.0.1:1", "DRONECTL_DRONE": "d1", "DRONECTL_KEY": key,
		"DRONECTL_REGISTRY": "127.0.0.1:1"}
	without := func(k string) map[string]string {
		e := map[string]string{}
		for kk, v := range env {
			if kk != k {
				e[kk] = v
			}
		}
		return e
	}
	with := func(k, v string) map[string]string {
		e := without(k)
		e[k] = v
		return e
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string // in stderr
	}{
		{"push without IMAGE", env, []string{"push"}, 2, "IMAGE is required"},
		{"push two images", env, []string{"push", "flight:v2", "flight:v3"}, 2, `unexpected argument "flight:v3"`},
		{"push without broker", without("DRONECTL_BROKER"), []string{"push", "flight:v2"}, 2, "-broker is required"},
		{"push without drone", without("DRONECTL_DRONE"), []string{"push", "flight:v2"}, 2, "-drone is required"},
		{"push without key", without("DRONECTL_KEY"), []string{"push", "flight:v2"}, 2, "-key is required"},
		{"bad broker scheme", env, []string{"push", "-broker", "http://127.0.0.1:1883", "flight:v2"}, 2, "-broker: "},
		{"broker without port", with("DRONECTL_BROKER", "tcp://broker.local"), []string{"push", "flight:v2"}, 2, "-broker: "},
		{"bad drone", env, []string{"push", "flight:v2", "-drone", "d1/#"}, 2, "-drone: "},
		{"bad strategy", env, []string{"push", "-strategy", "fast", "flight:v2"}, 2, "-strategy: "},
		{"bad id", env, []string{"push", "-id", "a b", "flight:v2"}, 2, "-id: "},
		{"bad app", env, []string{"push", "-app", "-x", "flight:v2"}, 2, "-app: "},
		{"bad key id", env, []string{"push", "-key-id", "a b", "flight:v2"}, 2, "-key-id: "},
		{"ttl too long", env, []string{"push", "-ttl", "11m", "flight:v2"}, 2, "-ttl"},
		{"ttl zero", env, []string{"push", "-ttl", "0s", "flight:v2"}, 2, "-ttl"},
		{"timeout negative", env, []string{"push", "-timeout", "-1s", "flight:v2"}, 2, "-timeout"},
		{"CA with a plain broker", env, []string{"push", "-ca", "/etc/ssl/ca.pem", "flight:v2"}, 2, "-ca: "},
		{"cert without key", env, []string{"push", "-broker", "ssl://127.0.0.1:8883", "-cert", "c.pem", "flight:v2"}, 2, "-client-key: "},
		{"password without user", env, []string{"push", "-password", "x", "flight:v2"}, 2, "-password: "},
		{"bad DRONECTL_PLAIN_HTTP", with("DRONECTL_PLAIN_HTTP", "maybe"), []string{"push", "flight:v2"}, 2, "$DRONECTL_PLAIN_HTTP"},
		{"undefined flag", env, []string{"push", "-registy", "x", "flight:v2"}, 2, "-registy"},
		{"missing key file", with("DRONECTL_KEY", key+".nope"), []string{"push", "flight:v2"}, 1, "-key:"},
		{"short name without registry", without("DRONECTL_REGISTRY"), []string{"push", "flight:v2"}, 1, "names no registry"},
		{"push help", env, []string{"push", "-h"}, 0, "-registry"},
		{"help hides the password", with("DRONECTL_PASSWORD", "hunter2"), []string{"push", "-h"}, 0, "-password"},
		{"password from the environment", with("DRONECTL_PASSWORD", "hunter2"), []string{"push", "flight:v2"}, 2, "-password: set without Username"},
		{"rollback stray argument", env, []string{"rollback", "flight:v1"}, 2, `unexpected argument "flight:v1"`},
		{"rollback bad strategy", env, []string{"rollback", "-strategy", "fast"}, 2, "-strategy: "},
		{"status without drone", without("DRONECTL_DRONE"), []string{"status"}, 2, "-drone is required"},
		{"status ttl too long", env, []string{"status", "-ttl", "11m"}, 2, "-ttl"},
		{"status no broker", env, []string{"status"}, 1, "connect to tcp://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := dronectlEnv(t, time.Now, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut, tt.code, tt.msg)
			}
			if code != 0 && out != "" {
				t.Errorf("a failure printed %q on stdout", out)
			}
			if strings.Contains(out+errOut, "hunter2") {
				t.Errorf("the password was printed:\n%s%s", out, errOut)
			}
		})
	}
}

// pushRig is a broker, a registry with flight:v1 and v2, a fake drone d1
// and the environment that points dronectl at them.
type pushRig struct {
	m      *brokertest.Mosquitto
	reg    *pushtest.Registry
	drone  *pushtest.Drone
	env    map[string]string
	digest map[string]string // tag -> digest
}

func newPushRig(t *testing.T, s pushtest.Script) *pushRig {
	t.Helper()
	key, pub := ground(t)
	r := &pushRig{m: brokertest.Start(t, nil), reg: pushtest.StartRegistry(t), digest: map[string]string{}}
	for _, v := range []string{"v1", "v2"} {
		r.digest[v] = r.reg.PushIndex(t, "flight:"+v)
	}
	r.drone = pushtest.StartDrone(t, r.m, "d1", pub, s)
	r.env = map[string]string{"DRONECTL_BROKER": r.m.URL, "DRONECTL_DRONE": "d1", "DRONECTL_KEY": key, "DRONECTL_REGISTRY": r.reg.Host}
	return r
}

// handover answers an update or rollback as the agent does when it
// commits a hand-over; an image whose tag is v3 is reverted.
func handover(d *pushtest.Drone, c command.Command) []report.Event {
	evs := []report.Event{{App: c.App, Phase: report.PhasePulling, To: c.Image}}
	if c.Image != "" {
		evs = append(evs, report.Event{App: c.App, Phase: report.PhasePulled, To: c.Image, Bytes: 4096})
	}
	evs = append(evs, report.Event{App: c.App, Phase: "prepare"}, report.Event{App: c.App, Phase: "cutover", Epoch: 2})
	if strings.Contains(c.Image, ":v3@") {
		return append(evs, report.Event{App: c.App, Phase: report.PhaseResult, Outcome: "reverted", Error: "attitude left the envelope in probation"})
	}
	return append(evs, report.Event{App: c.App, Phase: report.PhaseResult, Outcome: "committed", Epoch: 2})
}

func TestPushEndToEnd(t *testing.T) {
	r := newPushRig(t, handover)
	code, out, errOut := dronectlEnv(t, time.Now, r.env, "push", "flight:v2")
	t.Logf("dronectl push flight:v2: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	if code != 0 {
		t.FailNow()
	}
	want := r.reg.Host + "/flight:v2@" + r.digest["v2"]
	cmds := r.drone.Commands()
	if len(cmds) != 1 || cmds[0].Image != want || cmds[0].Kind != command.KindUpdate || cmds[0].App != "flight" {
		t.Fatalf("the drone got %+v, want an update of flight to %s", cmds, want)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	phases := []string{"phase=pulling to=" + want, "phase=pulled bytes=4096", "phase=prepare", "phase=cutover", "phase=result outcome=committed"}
	if len(lines) != len(phases) {
		t.Fatalf("stdout has %d lines, want %d:\n%s", len(lines), len(phases), out)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "elapsed_ms=") || !strings.Contains(l, phases[i]) {
			t.Errorf("line %d: %q, want elapsed_ms=... %s", i, l, phases[i])
		}
	}
}

func TestPushReverted(t *testing.T) {
	r := newPushRig(t, handover)
	r.reg.PushIndex(t, "flight:v3")
	// The flags after the image, and the registry named in full.
	code, out, errOut := dronectlEnv(t, time.Now, r.env, "push", r.reg.Host+"/flight:v3", "-strategy", "handoff", "-id", "push-v3")
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if code != 1 || !strings.Contains(errOut, "dronectl push: update push-v3 on drone d1: reverted: attitude left the envelope in probation") {
		t.Errorf("exit %d, stderr %q: want 1 and the drone's reason", code, errOut)
	}
	if !strings.Contains(out, "outcome=reverted") {
		t.Errorf("stdout does not show the outcome:\n%s", out)
	}
}

func TestPushMissingTag(t *testing.T) {
	r := newPushRig(t, handover)
	code, out, errOut := dronectlEnv(t, time.Now, r.env, "push", "flight:v9")
	if code != 1 || !strings.Contains(errOut, "flight:v9") || !strings.Contains(errOut, r.reg.Host) || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q: want 1 and an error naming flight:v9 and the registry", code, out, errOut)
	}
	// Nothing was published: a probe sent now is the first command the
	// drone receives (the broker keeps one publisher's order to a
	// subscriber, and dronectl had returned before the probe).
	r.m.Peer(t, "").MustPublish(t, "fleet/d1/cmd", 1, false, []byte("probe"))
	deadline := time.Now().Add(10 * time.Second)
	for r.drone.Received() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.drone.Received(); n != 1 || len(r.drone.Commands()) != 0 {
		t.Errorf("the drone received %d payloads and %d commands; want only the probe", n, len(r.drone.Commands()))
	}
}

func TestRollbackAndStatus(t *testing.T) {
	r := newPushRig(t, func(d *pushtest.Drone, c command.Command) []report.Event {
		if c.Kind == command.KindStatus {
			d.State(report.State{Drone: "d1", Online: true, Committed: map[string]string{"flight": "v1"}})
			return nil
		}
		return handover(d, c)
	})
	code, out, errOut := dronectlEnv(t, time.Now, r.env, "rollback")
	if code != 0 || !strings.Contains(out, "outcome=committed") {
		t.Fatalf("rollback: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if c := r.drone.Commands(); len(c) != 1 || c[0].Kind != command.KindRollback || c[0].Image != "" {
		t.Errorf("the drone got %+v, want a rollback to the previous release", c)
	}

	code, out, errOut = dronectlEnv(t, time.Now, r.env, "rollback", "-image", "flight:v1")
	want := r.reg.Host + "/flight:v1@" + r.digest["v1"]
	if c := r.drone.Commands(); code != 0 || len(c) != 2 || c[1].Image != want {
		t.Errorf("rollback -image: exit %d, %s; the drone got %+v, want a rollback to %s", code, errOut, c, want)
	}

	code, out, errOut = dronectlEnv(t, time.Now, r.env, "status")
	var st report.State
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if want := (report.State{Drone: "d1", Online: true, Committed: map[string]string{"flight": "v1"}}); !reflect.DeepEqual(st, want) {
		t.Errorf("status printed %+v, want %+v", st, want)
	}
}
