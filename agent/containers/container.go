package containers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/skyswap/skyswap/images/labels"
)

// Spec is a container to start.
type Spec struct {
	ID    string // unique in the namespace; also the log file's name
	Image string // a reference already pulled (Pull's ref)
	// Env is added to the image's environment (KEY=value; a key the image
	// sets is overridden).
	Env []string
	// Mounts are bind mounts from the host, e.g. the virtual drone's socket
	// directory or the /dev/shm lease file. Sources must exist.
	Mounts []Mount
	// Devices are host device paths (e.g. /dev/i2c-1), each made available
	// at the same path, read-write. They must exist. The container's user
	// gets each device's group (when not root's), as a host user in the
	// i2c or video group would.
	Devices []string
	Labels  map[string]string // container labels, returned by Inspect
	// RealTime lets the container's threads take SCHED_FIFO, using up to
	// this much CPU time per second under it (realtime.go); less than a
	// second. 0 = ordinary scheduling only, the default.
	RealTime time.Duration
}

// Mount is a bind mount of host path Source at Target in the container.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// Status is a container as Inspect and List see it.
type Status struct {
	ID      string
	Image   string
	Running bool
	Pid     uint32 // host pid of the container's init process; 0 without a task
	// Exited is true once the task has exited and until Stop deletes it;
	// ExitCode and ExitedAt are valid then (128+n for a signal n).
	Exited   bool
	ExitCode uint32
	ExitedAt time.Time
	Labels   map[string]string
}

// ExitStatus is how a task ended. Err is set when waiting failed (then
// Code is meaningless).
type ExitStatus struct {
	Code     uint32
	ExitedAt time.Time
	Err      error
}

// Start creates the container from s and starts its task; it returns once
// the process runs. On failure nothing of the container is left behind.
// An ID in use is ErrExists; an image not pulled is ErrNotFound.
func (r *Runtime) Start(ctx context.Context, s Spec) (retErr error) {
	ctx = r.ctx(ctx)
	if s.ID == "" || s.Image == "" {
		return fmt.Errorf("containers: start: Spec needs an ID and an Image")
	}
	if s.RealTime < 0 || s.RealTime >= rtPeriod {
		return fmt.Errorf("containers: start %s: real-time time %v per second: want 0 (none) or less than %v", s.ID, s.RealTime, rtPeriod)
	}
	img, err := r.c.GetImage(ctx, s.Image)
	if err != nil {
		return classify(err, "start %s: image %s (pull it first)", s.ID, s.Image)
	}
	if ok, err := img.IsUnpacked(ctx, r.snapshotter); err != nil || !ok {
		if err := img.Unpack(ctx, r.snapshotter); err != nil {
			return classify(err, "start %s: unpack %s", s.ID, s.Image)
		}
	}
	if err := r.clearLeftovers(ctx, s.ID); err != nil {
		return err
	}
	opts, err := r.specOpts(s, img)
	if err != nil {
		return fmt.Errorf("containers: start %s: %w", s.ID, err)
	}
	labels, err := withImageLabels(ctx, img, s.Labels)
	if err != nil {
		return fmt.Errorf("containers: start %s: %w", s.ID, err)
	}
	if s.RealTime > 0 {
		r.rt.mu.Lock() // until the task (and its cgroup) exists
		defer r.rt.mu.Unlock()
		if err := r.rt.reserve(s.RealTime); err != nil {
			return fmt.Errorf("containers: start %s: %w", s.ID, err)
		}
	}
	c, err := r.c.NewContainer(ctx, s.ID,
		client.WithImage(img),
		client.WithSnapshotter(r.snapshotter),
		client.WithNewSnapshot(s.ID, img),
		client.WithNewSpec(opts...),
		client.WithContainerLabels(labels))
	if err != nil {
		return classify(err, "start %s: create", s.ID)
	}
	defer func() {
		if retErr != nil {
			_ = c.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
		}
	}()
	t, err := c.NewTask(ctx, cio.LogFile(LogFile(r.logDir, s.ID)))
	if err != nil {
		return classify(err, "start %s: create task", s.ID)
	}
	if err := t.Start(ctx); err != nil {
		_, _ = t.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
		return classify(err, "start %s: start task", s.ID)
	}
	return nil
}

// clearLeftovers removes what an earlier life left under id so that
// creating it again cannot fail on a name that exists: a container whose
// task is not running (exited, or never started after a crash), or a
// snapshot without a container. A running one is ErrExists: it may be
// flying, and only its owner may stop it.
func (r *Runtime) clearLeftovers(ctx context.Context, id string) error {
	c, err := r.c.LoadContainer(ctx, id)
	switch {
	case err == nil:
		st, err := r.status(ctx, c)
		if err != nil {
			return err
		}
		if st.Running {
			return fmt.Errorf("%w: start %s: a container of that name is running; stop it first", ErrExists, id)
		}
		return r.Remove(ctx, id)
	case !errdefs.IsNotFound(err):
		return classify(err, "start %s: look up", id)
	}
	sn := r.c.SnapshotService(r.snapshotter)
	if _, err := sn.Stat(ctx, id); err == nil {
		if err := sn.Remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return classify(err, "start %s: remove the leftover snapshot", id)
		}
	}
	return nil
}

// withImageLabels returns the container's labels: the image's skyswap
// labels (images/labels: app, version...), so that what runs can be
// selected by release (skyswap-chaos, a person with ctr) and adopted after
// the agent lost its state, then own (which wins).
func withImageLabels(ctx context.Context, img client.Image, own map[string]string) (map[string]string, error) {
	cfg, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	all := map[string]string{}
	for k, v := range cfg.Config.Labels {
		if strings.HasPrefix(k, labels.Prefix) {
			all[k] = v
		}
	}
	maps.Copy(all, own)
	return all, nil
}

func (r *Runtime) specOpts(s Spec, img client.Image) ([]oci.SpecOpts, error) {
	mounts := []specs.Mount{{
		Destination: "/tmp",
		Type:        "tmpfs",
		Source:      "tmpfs",
		Options:     []string{"nosuid", "nodev", "noexec", "mode=1777", "size=64m"},
	}}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
			return nil, fmt.Errorf("mount %s -> %s: both paths must be absolute", m.Source, m.Target)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return nil, fmt.Errorf("mount source: %w", err)
		}
		o := []string{"rbind", "rprivate", "nosuid", "nodev"}
		if m.ReadOnly {
			o = append(o, "ro")
		} else {
			o = append(o, "rw")
		}
		mounts = append(mounts, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: o})
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img), // entrypoint, env, cwd, user and its groups
		oci.WithEnv(s.Env),
		oci.WithRootFSReadonly(),
		oci.WithNoNewPrivileges,
		oci.WithCapabilities(nil),
		seccomp.WithDefaultProfile(),
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithHostHostsFile,
		oci.WithHostResolvconf,
		oci.WithMounts(mounts),
	}
	if s.RealTime > 0 {
		opts = append(opts, withRealTime(s.RealTime, r.rt.root != ""))
	}
	var gids []uint32
	for _, d := range s.Devices {
		fi, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("device: %w", err)
		}
		if fi.Mode()&os.ModeDevice == 0 {
			return nil, fmt.Errorf("device %s: not a device node", d)
		}
		// The node in the container and a device cgroup rule for it.
		opts = append(opts, oci.WithLinuxDevice(d, "rwm"))
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Gid != 0 {
			gids = append(gids, st.Gid)
		}
	}
	if len(gids) > 0 {
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, sp *oci.Spec) error {
			sp.Process.User.AdditionalGids = append(sp.Process.User.AdditionalGids, gids...)
			return nil
		})
	}
	return opts, nil
}

// Stop sends SIGTERM to the container's task, waits up to grace for it to
// exit, then sends SIGKILL, and deletes the task. The container and its
// snapshot stay (Remove deletes them). A container without a task, or no
// container at all, is not an error.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ctx(ctx)
	t, err := r.task(ctx, id)
	if t == nil {
		return err
	}
	st, err := t.Status(ctx)
	if err != nil {
		return classify(err, "stop %s: status", id)
	}
	if st.Status != client.Stopped {
		exited, err := t.Wait(ctx)
		if err != nil {
			return classify(err, "stop %s: wait", id)
		}
		sig := syscall.SIGTERM
		if st.Status == client.Created {
			sig = syscall.SIGKILL // never started: nothing to shut down
		}
		if err := kill(ctx, t, sig); err != nil {
			return classify(err, "stop %s: %s", id, sig)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
		case <-timer.C:
			if err := kill(ctx, t, syscall.SIGKILL); err != nil {
				return classify(err, "stop %s: SIGKILL after %s", id, grace)
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return fmt.Errorf("containers: stop %s: waiting after SIGKILL: %w", id, ctx.Err())
			}
		case <-ctx.Done():
			return fmt.Errorf("containers: stop %s: %w", id, ctx.Err())
		}
	}
	if _, err := t.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return classify(err, "stop %s: delete task", id)
	}
	r.rt.settle(id) // the task's cgroup went with it
	return nil
}

func kill(ctx context.Context, t client.Task, sig syscall.Signal) error {
	err := t.Kill(ctx, sig)
	if errdefs.IsNotFound(err) { // exited meanwhile
		return nil
	}
	return err
}

// task loads the container's task; (nil, nil) when there is no container
// or no task.
func (r *Runtime) task(ctx context.Context, id string) (client.Task, error) {
	c, err := r.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err, "container %s", id)
	}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err, "container %s: task", id)
	}
	return t, nil
}

// Remove deletes the container and its snapshot. A task still there is
// killed first (SIGKILL; use Stop for a graceful end). An absent container
// is not an error. The log file stays.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ctx(ctx)
	c, err := r.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err, "remove %s", id)
	}
	if t, err := c.Task(ctx, nil); err == nil {
		if _, err := t.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return classify(err, "remove %s: delete task", id)
		}
	} else if !errdefs.IsNotFound(err) {
		return classify(err, "remove %s: task", id)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return classify(err, "remove %s", id)
	}
	r.rt.settle(id)
	return nil
}

// Inspect reports a container; an absent one is ErrNotFound.
func (r *Runtime) Inspect(ctx context.Context, id string) (Status, error) {
	ctx = r.ctx(ctx)
	c, err := r.c.LoadContainer(ctx, id)
	if err != nil {
		return Status{}, classify(err, "inspect %s", id)
	}
	return r.status(ctx, c)
}

// List reports every container in the namespace.
func (r *Runtime) List(ctx context.Context) ([]Status, error) {
	ctx = r.ctx(ctx)
	cs, err := r.c.Containers(ctx)
	if err != nil {
		return nil, classify(err, "list")
	}
	out := make([]Status, 0, len(cs))
	for _, c := range cs {
		s, err := r.status(ctx, c)
		if errdefs.IsNotFound(err) || errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Runtime) status(ctx context.Context, c client.Container) (Status, error) {
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return Status{}, classify(err, "inspect %s", c.ID())
	}
	s := Status{ID: c.ID(), Image: info.Image, Labels: info.Labels}
	t, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return s, nil
	}
	if err != nil {
		return Status{}, classify(err, "inspect %s: task", c.ID())
	}
	st, err := t.Status(ctx)
	if err != nil {
		return Status{}, classify(err, "inspect %s: task status", c.ID())
	}
	s.Pid = t.Pid()
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		s.Running = true
	case client.Stopped:
		s.Exited, s.ExitCode, s.ExitedAt = true, st.ExitStatus, st.ExitTime
	}
	return s, nil
}

// Wait returns a channel that receives the task's exit once and is then
// closed. A task that has exited already is reported at once. No
// container, or no task, is ErrNotFound. Cancelling ctx ends the wait
// (the channel then carries ctx's error).
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan ExitStatus, error) {
	ctx = r.ctx(ctx)
	t, err := r.task(ctx, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("%w: wait %s: no running container", ErrNotFound, id)
	}
	in, err := t.Wait(ctx)
	if err != nil {
		return nil, classify(err, "wait %s", id)
	}
	out := make(chan ExitStatus, 1)
	go func() {
		defer close(out)
		e, ok := <-in
		if !ok {
			out <- ExitStatus{Err: fmt.Errorf("containers: wait %s: no exit status", id)}
			return
		}
		code, at, err := e.Result()
		if err != nil {
			err = classify(err, "wait %s", id)
		}
		out <- ExitStatus{Code: code, ExitedAt: at, Err: err}
	}()
	return out, nil
}
