package chaos

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	fl, err := ParseFlags([]string{"-select", "io.skyswap.app=flight,io.skyswap.version=v2",
		"-fault", "kind=sigstop,for=300ms,every=10s", "-fault", "kind=latency,delay=600ms,for=2s,every=10s",
		"-nats-listen", "127.0.0.1:4223", "-namespace", "skyswap-demo"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if fl.Select.String() != "io.skyswap.app=flight,io.skyswap.version=v2" || len(fl.Faults) != 2 ||
		fl.Faults[1].Delay != 600*time.Millisecond || fl.NATSUpstream != "127.0.0.1:4222" || fl.Namespace != "skyswap-demo" ||
		fl.Address != "/run/containerd/containerd.sock" || fl.Sim != DefaultSim {
		t.Fatalf("flags %+v", fl)
	}
}

// TestBadFlags: a bad command line exits 2 and says what to write instead.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"-fault", "kind=sigstop,for=300ms"}, "-select io.skyswap.app=flight"},
		{[]string{"-select", "io.skyswap.version=v2"}, "-fault kind=sigstop,for=300ms,every=10s"},
		{[]string{"-select", "io.skyswap.version=v2", "-fault", "kind=sigstop,for=300"}, "write for=300ms"},
		{[]string{"-select", "io.skyswap.version=v2", "-fault", "kind=latency,delay=1s,for=2s"}, "add -nats-listen 127.0.0.1:4223"},
		{[]string{"-select", "io.skyswap.version=v2", "-fault", "kind=sigkill", "sigstop"}, "give faults as -fault"},
		{[]string{"-select", "io.skyswap.version=v2", "-fault", "kind=sigkill", "-nats-listen", "127.0.0.1:0", "-nats-upstream", ""}, "-nats-upstream"},
		{[]string{"-selector", "io.skyswap.version=v2"}, "flag provided but not defined: -selector"},
	} {
		var stderr, stdout bytes.Buffer
		code := Main(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.hint) || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message containing %q", tc.args, code, stderr.String(), tc.hint)
		}
	}
	var stderr bytes.Buffer
	if code := Main(context.Background(), []string{"-h"}, &bytes.Buffer{}, &stderr); code != 0 || !strings.Contains(stderr.String(), "kind=hog") {
		t.Errorf("-h: exit %d, %q; want 0 and the usage", code, stderr.String())
	}
}
