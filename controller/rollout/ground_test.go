package rollout_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/controller/rollout"
)

// groundEnv, when set in this test binary's environment, makes it the
// ground's process of TestGroundKilled: a Manager that starts or resumes
// a rollout and runs until it is killed.
const groundEnv = "SKYSWAP_TEST_GROUND"

func TestMain(m *testing.M) {
	if os.Getenv(groundEnv) != "" {
		if err := groundMain(); err != nil {
			fmt.Fprintln(os.Stderr, "ground:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// groundMain is the ground's process: SKYSWAP_TEST_GROUND is "start" or
// "resume", with the broker, key file and records directory in
// SKYSWAP_TEST_BROKER, _KEY and _DIR; "start" prints the rollout's id.
func groundMain() error {
	key, err := command.ReadPrivateKey(os.Getenv("SKYSWAP_TEST_KEY"))
	if err != nil {
		return err
	}
	ctx := context.Background()
	m, err := rollout.Open(ctx, rollout.Config{Link: push.Config{Broker: os.Getenv("SKYSWAP_TEST_BROKER"), Key: key},
		Dir: os.Getenv("SKYSWAP_TEST_DIR"), Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	if os.Getenv(groundEnv) == "start" {
		waves, _ := rollout.ParseWaves("2,50%,100%")
		rec, err := m.Start(ctx, rollout.Spec{Image: v2, All: true, Waves: waves})
		if err != nil {
			return err
		}
		fmt.Println(rec.ID)
	}
	select {} // until killed
}

// ground is the ground's process.
type ground struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

func (f *fleet) runGround(t *testing.T, dir, mode string) *ground {
	t.Helper()
	keyFile := filepath.Join(dir, "ground.key")
	if _, err := os.Stat(keyFile); err != nil {
		if err := command.WritePrivateKey(keyFile, f.key); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), groundEnv+"="+mode, "SKYSWAP_TEST_BROKER="+f.broker, "SKYSWAP_TEST_KEY="+keyFile,
		"SKYSWAP_TEST_DIR="+filepath.Join(dir, "rollouts"))
	cmd.Stderr = testWriter{t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &ground{cmd: cmd, out: bufio.NewScanner(out)}
	t.Cleanup(func() { g.kill(t) })
	return g
}

// rollout reads the id the ground printed.
func (g *ground) rollout(t *testing.T) string {
	t.Helper()
	if !g.out.Scan() {
		t.Fatalf("the ground printed no rollout id: %v", g.out.Err())
	}
	return strings.TrimSpace(g.out.Text())
}

// await waits until the record the ground keeps in dir satisfies ok.
func (g *ground) await(t *testing.T, dir, id, what string, ok func(rollout.Record) bool) rollout.Record {
	t.Helper()
	deadline := time.Now().Add(waitRollout)
	var rec rollout.Record
	for {
		b, err := os.ReadFile(filepath.Join(dir, "rollouts", id+".json"))
		if err == nil {
			rec = rollout.Record{}
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s:\n%s", what, waitRollout, strings.Join(rollout.Lines(rec), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills the ground at once (SIGKILL): nothing of it is flushed.
func (g *ground) kill(t *testing.T) {
	if g.cmd.ProcessState != nil {
		return
	}
	g.cmd.Process.Kill()
	g.cmd.Wait()
}
