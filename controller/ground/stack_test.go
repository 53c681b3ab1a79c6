package ground_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/ground/groundtest"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/rig"
)

// phasesToCommit are the phases of an update through the hand-over, each
// of which the timeline must show.
var phasesToCommit = []string{report.PhasePulling, report.PhasePulled, report.PhasePrepare, report.PhaseShadow,
	report.PhaseSynced, report.PhaseCutover, report.PhaseProbation, report.PhaseCommit}

// TestStack flies the real stack through `dronectl ground` (its broker and
// registry; drone-sim, drone-agent on containerd) and watches it in
// headless Chromium: the page loads with no error, the instruments move,
// a push of flight:v2 from the page (with its confirmation) shows every
// phase to commit and #version going v1 -> v2, v2's camera appears, and a
// rollback from the page brings v1 back.
func TestStack(t *testing.T) {
	s, _ := startStack(t)
	b := groundtest.StartBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v1, err := push.Resolve(ctx, s.Refs["v1"], "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := push.Run(ctx, push.Config{Broker: s.BrokerURL, Drone: s.Drone, Key: s.Key, Timeout: 2 * time.Minute},
		push.Request{Kind: command.KindUpdate, Image: v1}); err != nil {
		t.Fatalf("deploy v1: %v", err)
	}
	// Update in a hover, as an operator would (and the demo does), not in
	// the climb.
	if _, err := s.Sim.WaitHover(ctx, longWait); err != nil {
		t.Fatal(err)
	}

	if err := b.Open(s.Ground.URL + "#d1"); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector('#version').textContent === 'v1'`, longWait)
	moving(t, b, 2*time.Second, "#alt", "#motors")
	if src := text(t, b, "#camera[src]"); src != "" {
		t.Errorf("v1 has no camera, yet #camera shows a frame")
	}
	noErrors(t, b, "on load")

	// Push flight:v2 from the page, through its confirmation.
	wait(t, b, `[...document.querySelectorAll('#image option')].some(o => o.value === 'flight:v2')`, shortWait)
	if _, err := groundtest.Eval[bool](b, `(document.querySelector('#image').value = 'flight:v2', true)`); err != nil {
		t.Fatal(err)
	}
	latest := `document.querySelector('#timeline .update')`
	fromPage(t, b, "#push", "flight:v2", latest)
	shown, err := groundtest.Eval[[]string](b, `[...`+latest+`.querySelectorAll('.phase')].map(p => p.dataset.phase)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phasesToCommit {
		if !strings.Contains(" "+strings.Join(shown, " ")+" ", " "+p+" ") {
			t.Errorf("the timeline of the update shows %v: no %q", shown, p)
		}
	}
	wait(t, b, `document.querySelector('#version').textContent === 'v2'`, shortWait)
	wait(t, b, `Number(document.querySelector('#drone').dataset.markers) >= 1`, shortWait)

	// v2 owns the drone: its camera shows, frame after frame.
	wait(t, b, `document.querySelector('#camera').naturalWidth > 0 && document.querySelector('#camera').dataset.seq`, longWait)
	seq := text(t, b, "#camera-info")
	first, err := groundtest.Eval[string](b, `document.querySelector('#camera').dataset.seq`)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector('#camera').dataset.seq !== '`+first+`'`, shortWait)
	t.Logf("camera: %s", seq)
	noErrors(t, b, "through the update")
	screenshot(t, b, "stack.png")

	// Roll back from the page: v1 flies again.
	fromPage(t, b, "#rollback", "back", latest)
	if kind := text(t, b, "#timeline .update .kind"); !strings.HasPrefix(kind, "rollback") {
		t.Errorf("the newest update is %q, want the rollback", kind)
	}
	wait(t, b, `document.querySelector('#version').textContent === 'v1'`, shortWait)
	noErrors(t, b, "through the rollback")
	if err := s.Land(context.Background(), 30*time.Second); err != nil {
		t.Logf("land: %v", err)
	}
}

// startStack builds the binaries and starts the real stack through
// dronectl ground (drone-sim in gusts and noise, drone-agent on
// containerd), stopped when the test ends; its processes' logs are
// printed if the test fails.
func startStack(t *testing.T) (*rig.Stack, *lockedBuffer) {
	t.Helper()
	if testing.Short() {
		t.Skip("flies for about a minute")
	}
	switch {
	case os.Geteuid() != 0:
		containerstest.SkipOrFail(t, "the stack runs containers: run as root")
	default:
		if _, err := os.Stat(containers.DefaultSocket); err != nil {
			containerstest.SkipOrFail(t, "no containerd at %s: run scripts/dev-setup.sh containerd", containers.DefaultSocket)
		}
	}
	bin := t.TempDir()
	for _, cmd := range []string{"drone-sim", "drone-agent", "dronectl"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "../../cmd/"+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logs := &lockedBuffer{}
	s, err := rig.StartStack(ctx, rig.StackConfig{Dir: t.TempDir(), Sim: filepath.Join(bin, "drone-sim"), Agent: filepath.Join(bin, "drone-agent"),
		Ground: filepath.Join(bin, "dronectl"), Namespace: "skyswap-test-ground", Drone: "d1", Logs: logs,
		SimEnv: []string{"SIM_GUST_N=0.5", "SIM_GUST_NM=0.01", "SIM_NOISE=1"}}) // as make demo flies: the air is never still
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.tail(8000))
	}
	t.Cleanup(s.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", logs.tail(20000))
		}
	})
	return s, logs
}

// fromPage presses button (#push or #rollback), confirms (the dialog
// mentions want), and waits for the newest update (latest) to commit: a
// single press, since an update succeeds on a loaded machine too.
func fromPage(t *testing.T, b *groundtest.Browser, button, want, latest string) {
	t.Helper()
	before, err := groundtest.Eval[string](b, latest+`?.dataset.command ?? ''`)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.CSS(button))); err != nil {
		t.Fatal(err)
	}
	wait(t, b, `document.querySelector('#confirm').open && /`+want+`/.test(document.querySelector('#confirm-text').textContent)`, shortWait)
	if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.CSS("#confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	wait(t, b, latest+`?.dataset.command !== `+quote(before)+` && `+latest+`.dataset.outcome`, 3*time.Minute)
	outcome, err := groundtest.Eval[string](b, latest+`.dataset.outcome`)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != "committed" {
		t.Fatalf("%s: %s: %s", button, outcome, text(t, b, "#timeline .update"))
	}
}

// lockedBuffer keeps the processes' output for a failing test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
