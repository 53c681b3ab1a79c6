package chaos

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestEventGolden pins the JSON lines skyswap-chaos prints: the soak and
// people's scripts read them, so a change to a field's name or shape must
// show up here first (go test -update rewrites the file).
func TestEventGolden(t *testing.T) {
	labels := map[string]string{"io.skyswap.app": "flight", "io.skyswap.version": "v2", "io.skyswap.instance": "flight-v2"}
	events := []Event{
		{T: "2026-12-06T03:06:44.815453605Z", MonoNs: 1365802172194, Fault: SigStop, Container: "flight-v2", Labels: labels,
			Pid: 4242, ForMs: 300, OK: true, Spec: "kind=sigstop,for=300ms,every=10s", N: 1},
		{T: "2026-12-06T03:06:45Z", MonoNs: 1365802172195, Fault: SigStop, ForMs: 300, Spec: "kind=sigstop,for=300ms,every=10s", N: 2,
			Error: "no container matches io.skyswap.version=v2 in namespace skyswap"},
		{T: "2026-12-06T03:06:46Z", MonoNs: 1365802172196, Fault: Hog, Container: "flight-v2", Labels: labels, Pid: 4242,
			ForMs: 2000, OK: true, Spec: "kind=hog,for=2s", N: 1, CPUs: 2, HogPids: []int{5001, 5002},
			Cgroup: "/sys/fs/cgroup/cpu/skyswap/flight-v2"},
		{T: "2026-12-06T03:06:47Z", MonoNs: 1365802172197, Fault: Latency, Container: "flight-v2", Labels: labels, Pid: 4242,
			ForMs: 2000, OK: true, Spec: "kind=latency,for=2s,delay=600ms", N: 1, DelayMs: 600, Conns: 1},
		{T: "2026-12-06T03:06:48Z", MonoNs: 1365802172198, Fault: I2C, Container: "flight-v2", Labels: labels, Pid: 4242,
			ForMs: 200, OK: true, Spec: "kind=i2c,for=200ms,rate=0.2,addr=0x68", N: 1, Rate: 0.2, Addr: "0x68"},
		{T: "2026-12-06T03:06:49Z", MonoNs: 1365802172199, Fault: SigStop, Container: "flight-v2", Labels: labels, Pid: 4242,
			ForMs: 300, Spec: "kind=sigstop,for=300ms", N: 1, Undo: true, Error: "containers: signal flight-v2: SIGCONT: unavailable"},
	}
	var got bytes.Buffer
	e := newEmitter(&got)
	for _, ev := range events {
		if err := e.emit(ev); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "events.golden.jsonl")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("the event lines changed:\n%s\nwant:\n%s", got.Bytes(), want)
	}
}
