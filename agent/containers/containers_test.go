package containers

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/skyswap/skyswap/agent/containers/containerstest"
	"github.com/skyswap/skyswap/images/build"
	"golang.org/x/sys/unix"
)

// devGID is the group of the test's device node (not a group of the
// image's user).
const devGID = 4242

func TestOpenWithoutDaemon(t *testing.T) {
	_, err := Open(context.Background(), Config{Socket: filepath.Join(t.TempDir(), "containerd.sock")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open without a daemon: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "scripts/dev-setup.sh containerd") {
		t.Errorf("error does not say what to do: %v", err)
	}
}

func TestPull(t *testing.T) {
	r := openTest(t)
	removeAll(t, r)
	t.Cleanup(func() { removeAll(t, r) })
	ctx := context.Background()
	base := newBase(t)
	v1 := pushRelease(t, base, "v1")
	v2 := pushRelease(t, base, "v2")

	var events []Progress
	img, err := r.Pull(ctx, v1.ref, func(p Progress) { events = append(events, p) })
	if err != nil {
		t.Fatal(err)
	}
	want := v1.metaSize(t) + layerSize(t, base) + layerSize(t, v1.changed)
	t.Logf("pull %s: fetched %d bytes (index+manifest+config %d, layers %d+%d), size %d, %d progress calls",
		v1.ref, img.Fetched, v1.metaSize(t), layerSize(t, base), layerSize(t, v1.changed), img.Size, len(events))
	if img.Fetched != want {
		t.Errorf("first pull fetched %d bytes, want %d (this platform's blobs only)", img.Fetched, want)
	}
	if img.Size != want {
		t.Errorf("Size = %d, want %d", img.Size, want)
	}
	if img.Ref != v1.ref || !strings.HasSuffix(v1.ref, "@"+img.Digest) {
		t.Errorf("Ref, Digest = %s, %s; want %s", img.Ref, img.Digest, v1.ref)
	}
	if img.Labels["org.skyswap.strategy"] != "handoff" || img.Labels["org.skyswap.version"] != "v1" {
		t.Errorf("Labels = %v", img.Labels)
	}
	if len(events) == 0 || events[len(events)-1].Fetched != img.Fetched {
		t.Errorf("progress: %d calls, last %+v; want the last to report %d bytes", len(events), events[len(events)-1:], img.Fetched)
	}

	again, err := r.Pull(ctx, v1.ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pull %s again: fetched %d bytes", v1.ref, again.Fetched)
	if again.Fetched != 0 {
		t.Errorf("second pull fetched %d bytes, want 0", again.Fetched)
	}

	// v1 -> v2: only v2's own layer (and its index, manifest, config).
	img2, err := r.Pull(ctx, v2.ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	want2 := v2.metaSize(t) + layerSize(t, v2.changed)
	t.Logf("pull v1 -> v2: fetched %d bytes (changed layer %d, index+manifest+config %d; shared layer of %d not fetched)",
		img2.Fetched, layerSize(t, v2.changed), v2.metaSize(t), layerSize(t, base))
	if img2.Fetched != want2 {
		t.Errorf("v2 pull fetched %d bytes, want %d", img2.Fetched, want2)
	}

	// Keep the previous release, remove older ones: removing v1 keeps the
	// layer v2 shares and collects v1's own.
	if err := r.RemoveImage(ctx, v1.ref); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveImage(ctx, v1.ref); err != nil {
		t.Fatalf("RemoveImage of an absent image: %v", err)
	}
	if _, err := r.c.GetImage(r.ctx(ctx), v1.ref); !errdefs.IsNotFound(err) {
		t.Errorf("v1 after RemoveImage: %v, want not found", err)
	}
	cs := r.c.ContentStore()
	if _, err := cs.Info(r.ctx(ctx), digest.Digest(layerDigest(t, v1.changed))); !errdefs.IsNotFound(err) {
		t.Errorf("v1's own layer after RemoveImage: %v, want not found", err)
	}
	if _, err := cs.Info(r.ctx(ctx), digest.Digest(layerDigest(t, base))); err != nil {
		t.Errorf("layer shared with v2 after removing v1: %v, want kept", err)
	}
}

// A release kept in containerd "pulls" without the registry: a drone that
// lost its link can still roll back to it.
func TestPullOffline(t *testing.T) {
	far := httptest.NewServer(build.NewRegistry())
	defer far.Close()
	farHost := strings.TrimPrefix(far.URL, "http://")
	r := openTest(t, farHost)
	ctx := context.Background()
	rl := pushReleaseTo(t, farHost, newBase(t), "v1")
	t.Cleanup(func() { r.RemoveImage(ctx, rl.ref) })
	if _, err := r.Pull(ctx, rl.ref, nil); err != nil {
		t.Fatal(err)
	}
	far.Close()
	img, err := r.Pull(ctx, rl.ref, nil)
	if err != nil {
		t.Fatalf("pull of a complete local image with the registry gone: %v", err)
	}
	if img.Fetched != 0 || img.Labels["org.skyswap.version"] != "v1" || img.Size == 0 {
		t.Errorf("offline pull = %+v", img)
	}
	// An image not in containerd does need the registry.
	other := pushRelease(t, newBase(t), "v2")
	if _, err := r.Pull(ctx, strings.Replace(other.ref, regHost(), farHost, 1), nil); err == nil {
		t.Error("pull from a registry that is gone: no error")
	}
}

func TestPullNoPlatform(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	base := tarLayer(t, map[string][]byte{"probe": []byte("other " + nonce())})
	rel := tarLayer(t, map[string][]byte{"etc/release": []byte(nonce())})
	other := testImage(t, otherArch(), base, rel, nil)

	t.Run("index", func(t *testing.T) {
		ref, idx := pushIndex(t, "flight", map[string]v1Image{otherArch(): other, "riscv64": testImage(t, "riscv64", base, rel, nil)})
		_, err := r.Pull(ctx, ref, nil)
		t.Logf("pull: %v", err)
		if !errors.Is(err, ErrNoPlatform) {
			t.Fatalf("pull of an index without %s: %v, want ErrNoPlatform", r.Platform(), err)
		}
		if _, err := r.c.GetImage(r.ctx(ctx), ref); !errdefs.IsNotFound(err) {
			t.Errorf("image record after ErrNoPlatform: %v, want not found", err)
		}
		d, _ := idx.Digest()
		if _, err := r.c.ContentStore().Info(r.ctx(ctx), digest.Digest(d.String())); !errdefs.IsNotFound(err) {
			t.Errorf("index blob after ErrNoPlatform: %v, want not found", err)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		ref := pushImage(t, "flight", other)
		_, err := r.Pull(ctx, ref, nil)
		t.Logf("pull: %v", err)
		if !errors.Is(err, ErrNoPlatform) {
			t.Fatalf("pull of a %s manifest: %v, want ErrNoPlatform", otherArch(), err)
		}
		if _, err := r.c.GetImage(r.ctx(ctx), ref); !errdefs.IsNotFound(err) {
			t.Errorf("image record after ErrNoPlatform: %v, want not found", err)
		}
	})
}

// TestLookup: Lookup reads this host's labels from the registry without
// the layers (index, manifest and config only) and stores nothing; a Pull
// afterwards stores what Lookup said it would; Pull's refusals hold.
func TestLookup(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	cs := r.c.ContentStore()
	// absent checks that no blob of digests is in the content store.
	absent := func(t *testing.T, what string, digests ...string) {
		t.Helper()
		for _, d := range digests {
			if _, err := cs.Info(r.ctx(ctx), digest.Digest(d)); !errdefs.IsNotFound(err) {
				t.Errorf("%s: blob %s is in the content store (%v), want nothing stored", what, d, err)
			}
		}
	}
	rl := pushRelease(t, newBase(t), "v1")
	t.Cleanup(func() { r.RemoveImage(ctx, rl.ref) })
	idxDigest, _ := rl.idx.Digest()
	manDigest, _ := rl.host.Digest()
	cfgDigest, _ := rl.host.ConfigName()
	blobs := []string{idxDigest.String(), manDigest.String(), cfgDigest.String(), layerDigest(t, rl.base), layerDigest(t, rl.changed)}

	img, err := r.Lookup(ctx, rl.ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lookup %s: fetched %d bytes of %d, labels %v", rl.ref, img.Fetched, img.Size, img.Labels)
	if img.Fetched != rl.metaSize(t) {
		t.Errorf("Fetched = %d, want %d (index, host manifest and config)", img.Fetched, rl.metaSize(t))
	}
	if img.Labels["org.skyswap.version"] != "v1" || img.Ref != rl.ref || img.Digest != idxDigest.String() {
		t.Errorf("Lookup = %+v", img)
	}
	if _, err := r.c.GetImage(r.ctx(ctx), rl.ref); !errdefs.IsNotFound(err) {
		t.Errorf("image record after Lookup: %v, want none", err)
	}
	absent(t, "after Lookup", blobs...)

	pulled, err := r.Pull(ctx, rl.ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Size != img.Size || pulled.Fetched != img.Size {
		t.Errorf("Pull: size %d, fetched %d; want Lookup's size %d for both", pulled.Size, pulled.Fetched, img.Size)
	}
	again, err := r.Lookup(ctx, rl.ref)
	if err != nil || again.Fetched != 0 || again.Labels["org.skyswap.version"] != "v1" {
		t.Errorf("Lookup of a pulled image: %+v, %v; want its labels with nothing fetched", again, err)
	}

	t.Run("no platform", func(t *testing.T) {
		base := tarLayer(t, map[string][]byte{"probe": []byte("other " + nonce())})
		rel := tarLayer(t, map[string][]byte{"etc/release": []byte(nonce())})
		other := testImage(t, otherArch(), base, rel, nil)
		ref, idx := pushIndex(t, "flight", map[string]v1Image{otherArch(): other})
		img, err := r.Lookup(ctx, ref)
		t.Logf("index: %v", err)
		if !errors.Is(err, ErrNoPlatform) || img.Fetched != blobSize(t, idx.RawManifest) {
			t.Errorf("Lookup of an index without %s: fetched %d, %v; want ErrNoPlatform after the index alone (%d bytes)",
				r.Platform(), img.Fetched, err, blobSize(t, idx.RawManifest))
		}
		d, _ := idx.Digest()
		absent(t, "index without this platform", d.String(), layerDigest(t, base), layerDigest(t, rel))

		ref = pushImage(t, "flight", other)
		img, err = r.Lookup(ctx, ref)
		t.Logf("manifest: %v", err)
		want := blobSize(t, other.RawManifest) + blobSize(t, other.RawConfigFile)
		if !errors.Is(err, ErrNoPlatform) || img.Fetched != want {
			t.Errorf("Lookup of a %s manifest: fetched %d, %v; want ErrNoPlatform after manifest and config (%d bytes)", otherArch(), img.Fetched, err, want)
		}
		absent(t, "manifest for another platform", layerDigest(t, base), layerDigest(t, rel))
	})
	t.Run("not found", func(t *testing.T) {
		_, err := r.Lookup(ctx, regHost()+"/flight@"+digest.FromString(nonce()).String())
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup of a digest the registry lacks: %v, want ErrNotFound", err)
		}
		_, err = r.Lookup(ctx, regHost()+"/flight:v1")
		if err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
			t.Errorf("Lookup by tag: %v, want a refusal", err)
		}
	})
}

func TestPullNotFound(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := regHost() + "/flight@" + digest.FromString(nonce()).String()
	_, err := r.Pull(ctx, ref, nil)
	t.Logf("pull: %v", err)
	if !errors.Is(err, ErrNotFound) || !errdefs.IsNotFound(err) {
		t.Errorf("pull of a digest the registry lacks: %v, want ErrNotFound (and errdefs.ErrNotFound)", err)
	}
	_, err = r.Pull(ctx, regHost()+"/flight:v1", nil)
	if err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
		t.Errorf("pull by tag: %v, want a refusal", err)
	}
}

// pulled pulls a fresh probe release for container tests.
func pulled(t *testing.T, r *Runtime) string {
	t.Helper()
	rl := pushRelease(t, newBase(t), "v1")
	if _, err := r.Pull(context.Background(), rl.ref, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.RemoveImage(context.Background(), rl.ref) })
	return rl.ref
}

// waitLog waits until the container's log has a line starting with prefix
// and returns the log as key -> values.
func waitLog(t *testing.T, id, prefix string) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := os.ReadFile(LogFile(logDir, id))
		lines := map[string][]string{}
		sc := bufio.NewScanner(strings.NewReader(string(p)))
		found := false
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ": ")
			lines[k] = append(lines[k], v)
			found = found || strings.HasPrefix(sc.Text(), prefix)
		}
		if found {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %s's log after 10 s:\n%s", prefix, id, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestContainerRoundTrip(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	id := "roundtrip-" + nonce()
	t.Cleanup(func() { r.Remove(ctx, id) })

	ro, rw := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "hello.txt"), []byte("token "+id+"\n"), 0o644)
	os.Chmod(rw, 0o777)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	heard := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		heard <- strings.TrimSpace(line)
	}()
	// A device node that stands in for /dev/i2c-1 (root:i2c, 0660): fuse's
	// numbers (10:229, which opens without side effects), group devGID. The
	// container's user opens it only if the device cgroup allows it and the
	// user got the device's group.
	dev := "/dev/skyswap-test-" + nonce()[:6]
	if err := unix.Mknod(dev, unix.S_IFCHR|0o660, int(unix.Mkdev(10, 229))); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dev)
	if err := os.Chown(dev, 0, devGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dev, 0o660); err != nil { // mknod's mode went through the umask
		t.Fatal(err)
	}
	devices := []string{dev}
	spec := Spec{
		ID:    id,
		Image: ref,
		Env: []string{"PROBE_TOKEN=" + id, "PROBE_DIAL=" + ln.Addr().String(),
			"PROBE_RO_DIR=/run/skyswap", "PROBE_RW_DIR=/data", "PROBE_OPEN=" + strings.Join(devices, " ")},
		Mounts:  []Mount{{Source: ro, Target: "/run/skyswap", ReadOnly: true}, {Source: rw, Target: "/data"}},
		Devices: devices,
		Labels:  map[string]string{"org.skyswap.app": "flight", "org.skyswap.instance": id},
	}
	start := time.Now()
	if err := r.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Logf("create+start latency: %.1f ms", float64(time.Since(start).Microseconds())/1000)
	exited, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	log := waitLog(t, id, "ready")
	t.Logf("container log:\n%s", mustRead(t, LogFile(logDir, id)))
	check := func(key, want string) {
		t.Helper()
		for _, v := range log[key] {
			if strings.Contains(v, want) {
				return
			}
		}
		t.Errorf("log %q = %q, want one containing %q", key, log[key], want)
	}
	check("uid", "65532") // the image's user
	check("gid", "65532")
	check("env", "PROBE_TOKEN="+id)
	check("env", "PROBE_FROM_IMAGE=yes")
	check("write /", "read-only file system")
	check("write /tmp", "ok")
	check("read ro", "ok token "+id)
	check("write ro", "read-only file system")
	check("write rw", "ok")
	check("dial "+ln.Addr().String(), "ok") // host network: the host's 127.0.0.1
	select {
	case got := <-heard:
		if got != "hello from probe" {
			t.Errorf("listener heard %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("the listener on the host's 127.0.0.1 heard nothing")
	}
	if p, err := os.ReadFile(filepath.Join(rw, "from-probe.txt")); err != nil || string(p) != "uid 65532\n" {
		t.Errorf("file written through the rw mount: %q, %v", p, err)
	}
	check("open "+dev, "ok")
	check("groups", strconv.Itoa(devGID))
	check("dev", filepath.Base(dev))
	// cgroup v1: the device cgroup's list, read from the host. (cgroup v2
	// enforces it with an eBPF program that has no such file.)
	if p, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/devices", testNamespace, id, "devices.list")); err == nil {
		t.Logf("device cgroup allows: %s", strings.ReplaceAll(strings.TrimSpace(string(p)), "\n", ", "))
		if !strings.Contains(string(p), "c 10:229 rwm") || strings.Contains(string(p), "a *:*") {
			t.Errorf("device cgroup list:\n%s\nwant c 10:229 rwm and no a *:*", p)
		}
	}
	for _, d := range strings.Fields(log["dev"][0]) {
		if d == "kmsg" || d == "vda" || strings.HasPrefix(d, "loop") {
			t.Errorf("/dev in the container has %s, which the Spec did not list", d)
		}
	}

	st, err := r.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Pid == 0 || st.Image != ref || st.Labels["org.skyswap.instance"] != id {
		t.Errorf("Inspect = %+v", st)
	}
	all, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(s Status) bool { return s.ID == id && s.Running }) {
		t.Errorf("List = %+v, want %s running", all, id)
	}

	start = time.Now()
	if err := r.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop (SIGTERM, graceful): %v", time.Since(start).Round(time.Millisecond))
	if time.Since(start) > 4*time.Second {
		t.Errorf("graceful stop took %v", time.Since(start))
	}
	waitLog(t, id, "term")
	if e := <-exited; e.Err != nil || e.Code != 0 {
		t.Errorf("exit after SIGTERM: %+v, want code 0", e)
	}
	if st, err := r.Inspect(ctx, id); err != nil || st.Running || st.Pid != 0 {
		t.Errorf("Inspect after Stop = %+v, %v; want a container without a task", st, err)
	}
	if err := r.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := r.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, id); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := r.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop of an absent container: %v", err)
	}
	if _, err := r.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after Remove: %v, want ErrNotFound", err)
	}
	if _, err := r.Wait(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Wait after Remove: %v, want ErrNotFound", err)
	}
	// The snapshot went with the container: the same ID starts again.
	spec.Env = []string{"PROBE_EXIT=0"}
	spec.Mounts, spec.Devices = nil, nil
	if err := r.Start(ctx, spec); err != nil {
		t.Fatalf("start again under the same ID after Remove: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	id := "stubborn-" + nonce()
	t.Cleanup(func() { r.Remove(ctx, id) })
	if err := r.Start(ctx, Spec{ID: id, Image: ref, Env: []string{"PROBE_IGNORE_TERM=1"}}); err != nil {
		t.Fatal(err)
	}
	exited, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, id, "ready")
	const grace = 500 * time.Millisecond
	start := time.Now()
	if err := r.Stop(ctx, id, grace); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("stop (SIGTERM ignored, SIGKILL after %v): %v", grace, took.Round(time.Millisecond))
	if took < grace || took > grace+3*time.Second {
		t.Errorf("Stop took %v, want a little over the %v grace", took, grace)
	}
	if e := <-exited; e.Err != nil || e.Code != 137 {
		t.Errorf("exit = %+v, want 137 (SIGKILL)", e)
	}
	if log := waitLog(t, id, "ready"); len(log["term"]) > 0 {
		t.Errorf("the probe saw SIGTERM although it ignores it")
	}
}

func TestWaitExitCode(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	id := "exit7-" + nonce()
	t.Cleanup(func() { r.Remove(ctx, id) })
	if err := r.Start(ctx, Spec{ID: id, Image: ref, Env: []string{"PROBE_EXIT=7"}}); err != nil {
		t.Fatal(err)
	}
	exited, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-exited:
		if e.Err != nil || e.Code != 7 {
			t.Errorf("Wait = %+v, want code 7", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit in 10 s")
	}
	st, err := r.Inspect(ctx, id)
	if err != nil || st.Running || !st.Exited || st.ExitCode != 7 {
		t.Errorf("Inspect after exit = %+v, %v; want Exited with code 7", st, err)
	}
	// Wait on a task that has exited already reports at once.
	again, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if e := <-again; e.Code != 7 {
		t.Errorf("Wait after the exit = %+v, want code 7", e)
	}
	if err := r.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusals(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	id := "refusals-" + nonce()
	t.Cleanup(func() { r.Remove(ctx, id) })

	err := r.Start(ctx, Spec{ID: id, Image: regHost() + "/flight@" + digest.FromString(nonce()).String()})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("start of an image not pulled: %v, want ErrNotFound", err)
	}
	err = r.Start(ctx, Spec{ID: id, Image: ref, Devices: []string{"/dev/i2c-does-not-exist"}})
	if err == nil {
		t.Error("start with a missing device: no error")
	}
	err = r.Start(ctx, Spec{ID: id, Image: ref, Mounts: []Mount{{Source: "/does/not/exist", Target: "/x"}}})
	if err == nil {
		t.Error("start with a missing mount source: no error")
	}
	if _, err := r.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused starts left a container: %v", err)
	}
	if err := r.Start(ctx, Spec{ID: id, Image: ref}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, Spec{ID: id, Image: ref}); !errors.Is(err, ErrExists) {
		t.Errorf("second start of %s: %v, want ErrExists", id, err)
	}
	// Remove kills a task still running.
	if err := r.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after Remove of a running container: %v", err)
	}
}

func TestStartLatency(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	var ms []float64
	for range 5 {
		id := "latency-" + nonce()
		start := time.Now()
		if err := r.Start(ctx, Spec{ID: id, Image: ref}); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		if err := r.Stop(ctx, id, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := r.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ms)
	t.Logf("create+start latency over %d starts: min %.1f ms, median %.1f ms, max %.1f ms", len(ms), ms[0], ms[len(ms)/2], ms[len(ms)-1])
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	p, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}

// TestStartOverLeftovers: what an earlier life of the agent left under a
// name (an exited container, a snapshot without its container) never
// fails a later start of that name; a running one still does.
func TestStartOverLeftovers(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	tests := []struct {
		name  string
		leave func(t *testing.T, id string)
	}{
		{"exited container", func(t *testing.T, id string) {
			if err := r.Start(ctx, Spec{ID: id, Image: ref, Env: []string{"PROBE_EXIT=3"}}); err != nil {
				t.Fatal(err)
			}
			exited, err := r.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			<-exited
		}},
		{"snapshot without a container", func(t *testing.T, id string) {
			sn := r.c.SnapshotService(r.snapshotter)
			if _, err := sn.Prepare(r.ctx(ctx), id, ""); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "leftover-" + nonce()
			t.Cleanup(func() { r.Remove(ctx, id) })
			tc.leave(t, id)
			if err := r.Start(ctx, Spec{ID: id, Image: ref}); err != nil {
				t.Fatalf("start over the leftover: %v", err)
			}
			st, err := r.Inspect(ctx, id)
			if err != nil || !st.Running {
				t.Fatalf("Inspect = %+v, %v; want running", st, err)
			}
			if err := r.Start(ctx, Spec{ID: id, Image: ref}); !errors.Is(err, ErrExists) {
				t.Errorf("start over a running container: %v, want ErrExists", err)
			}
		})
	}
}

// TestRealTime: a container with Spec.RealTime may put a thread under
// SCHED_FIFO, one without may not; where the kernel budgets real-time time
// by cgroup, the namespace's group holds what the running container holds,
// and gives it back when the container goes.
func TestRealTime(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	env := []string{"PROBE_RT=1"}
	plain, rt := "plain-"+nonce(), "rt-"+nonce()
	t.Cleanup(func() { r.Remove(ctx, plain); r.Remove(ctx, rt) })
	if err := r.Start(ctx, Spec{ID: plain, Image: ref, Env: env}); err != nil {
		t.Fatal(err)
	}
	if got := waitLog(t, plain, "ready")["rt"]; len(got) != 1 || !strings.Contains(got[0], "operation not permitted") {
		t.Errorf("without RealTime, SCHED_FIFO: %q, want operation not permitted", got)
	}
	if err := r.Start(ctx, Spec{ID: rt, Image: ref, Env: env, RealTime: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := waitLog(t, rt, "ready")["rt"]; len(got) != 1 || got[0] != "ok" {
		t.Errorf("with RealTime, SCHED_FIFO: %q, want ok", got)
	}
	if err := r.Start(ctx, Spec{ID: "too-much-" + nonce(), Image: ref, RealTime: time.Second}); err == nil {
		t.Error("RealTime of a whole second started")
	}
	if r.rt.root == "" {
		t.Logf("no cgroup v1 real-time groups here: the capability alone grants SCHED_FIFO")
		return
	}
	nsGroup := filepath.Join(r.rt.root, testNamespace)
	if got := mustRead(t, filepath.Join(nsGroup, rt, "cpu.rt_runtime_us")); strings.TrimSpace(got) != "100000" {
		t.Errorf("the container's group holds %s µs per second, want 100000", got)
	}
	if got := mustRead(t, filepath.Join(nsGroup, "cpu.rt_runtime_us")); strings.TrimSpace(got) != "100000" {
		t.Errorf("the namespace's group holds %s µs per second, want 100000 (what its containers hold)", got)
	}
	if err := r.Stop(ctx, rt, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// It is given back a period after the stop (rtBudget.settle says why).
	if got := containerstest.AwaitRealTime(t, nsGroup, "0"); got != "0" {
		t.Errorf("10 s after the stop the namespace's group holds %s µs per second, want 0", got)
	}
}
