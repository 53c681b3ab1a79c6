package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
)

// TestDemo runs make demo's program as a person would (short): it must
// deploy v1 through the agent, commit v2 mid-flight with zero double drive,
// pull about the changed layer only, relay telemetry, and land.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo flies for about a minute")
	}
	var missing string
	if os.Geteuid() != 0 {
		missing = "the demo needs root (containerd)"
	} else if _, err := os.Stat(containers.DefaultSocket); err != nil {
		missing = "no containerd at " + containers.DefaultSocket + ": run scripts/dev-setup.sh containerd"
	}
	if missing != "" {
		containerstest.SkipOrFail(t, "%s", missing)
	}
	bin := t.TempDir()
	for _, cmd := range []string{"drone-sim", "drone-agent", "dronectl", "skyswap-demo"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "../"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
	demo := exec.Command(filepath.Join(bin, "skyswap-demo"))
	demo.Dir = "../.." // the module root, where make demo runs it
	demo.Env = append(os.Environ(), "DEMO_SECONDS=10")
	var stderr bytes.Buffer
	demo.Stderr = &stderr
	out, err := demo.Output()
	if err != nil {
		t.Fatalf("skyswap-demo: %v\n%s\nstdout tail:\n%s", err, stderr.String(), tail(out, 4000))
	}
	var last string
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		last = sc.Text()
	}
	var sum summaryAgent
	if err := json.Unmarshal([]byte(last), &sum); err != nil || sum.Demo != "summary" {
		t.Fatalf("last line is not the summary (%v): %s", err, last)
	}
	t.Logf("summary: %s", last)
	u := sum.Update
	switch {
	case u == nil || u.Outcome != "committed":
		t.Fatalf("the update did not commit: %+v", u)
	case sum.Crashed || !sum.Landed:
		t.Fatalf("crashed %v, landed %v", sum.Crashed, sum.Landed)
	case sum.DoubleDrive != 0 || u.DoubleDrive != 0:
		t.Fatalf("double drive: %d in flight, %d at the cut-over", sum.DoubleDrive, u.DoubleDrive)
	case len(sum.Writers) != 2:
		t.Fatalf("writers %v, want v1's and v2's instances", sum.Writers)
	case u.RegistryBlobBytes < u.ChangedLayerBytes || u.RegistryBlobBytes > u.ChangedLayerBytes+64<<10:
		t.Fatalf("the registry served %d blob bytes for a %d-byte changed layer", u.RegistryBlobBytes, u.ChangedLayerBytes)
	case sum.TelemetryMessages == 0:
		t.Fatal("no telemetry reached the ground")
	case !strings.Contains(string(out), `"version":"v2"`):
		t.Fatal("the ground never saw v2's telemetry")
	case sum.CameraFrames == 0:
		t.Fatal("no camera frames reached the ground after v2, which has the camera")
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
