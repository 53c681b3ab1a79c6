package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestArm64VersionUnderQemu builds drone-agent for the Pi (linux/arm64,
// CGO off, stripped) and runs `drone-agent version` under qemu-user. It
// skips without binfmt_misc's qemu-aarch64, except in CI.
func TestArm64VersionUnderQemu(t *testing.T) {
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		msg := "qemu-aarch64 is not registered with binfmt_misc (scripts/dev-setup.sh qemu as root)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin := filepath.Join(t.TempDir(), "drone-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.Version=test-arm64", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cross build: %v\n%s", err, out)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drone-agent linux/arm64: %.1f MB", float64(fi.Size())/(1<<20))
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "drone-agent test-arm64") {
		t.Fatalf("arm64 drone-agent version: %v: %s", err, out)
	}
}

// TestBadConfigNamesTheSetting: a missing setting stops the agent with a
// message naming it.
func TestBadConfigNamesTheSetting(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "drone-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AGENT_DRONE=d1"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started without a broker or keys:\n%s", out)
	}
	for _, want := range []string{"AGENT_BROKER_URL", "AGENT_TRUSTED_KEYS"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}
