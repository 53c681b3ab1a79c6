// Package containers is the agent's container runtime: it pulls images and
// runs the flight app's containers through a containerd daemon (1.6 or
// newer) with containerd's Go client. containerd and OCI types stay inside
// this package; callers see Image, Spec, Status and the sentinel errors.
//
// Every container runs unprivileged: a read-only root filesystem, the
// image's user, no capabilities (but CAP_SYS_NICE for a Spec with RealTime:
// realtime.go), no new privileges, containerd's default
// seccomp profile, the host's network namespace (the on-board NATS listens
// on 127.0.0.1), a tmpfs on /tmp, and access to exactly the host devices its
// Spec lists (plus the standard /dev/null, /dev/zero... set that runc gives
// every container). Its stdout and stderr go to LogDir/<id>.log (LogFile),
// written by containerd's shim, so a container keeps logging while the
// agent restarts.
//
// The Runtime is safe for concurrent use.
package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultSocket      = "/run/containerd/containerd.sock"
	DefaultNamespace   = "skyswap"
	DefaultSnapshotter = "overlayfs"
	DefaultLogDir      = "/var/log/skyswap"
)

// Sentinel errors; every error this package returns for these conditions
// matches one of them with errors.Is.
var (
	// ErrUnavailable: no containerd daemon answers on the socket.
	ErrUnavailable = errors.New("containers: containerd unavailable")
	// ErrNotFound: the image (locally or in the registry) or the container
	// does not exist. Errors of this class also match errdefs.ErrNotFound
	// when containerd said so.
	ErrNotFound = errors.New("containers: not found")
	// ErrExists: a container with that ID exists already.
	ErrExists = errors.New("containers: already exists")
	// ErrNoPlatform: the image has no variant for this host's platform.
	ErrNoPlatform = errors.New("containers: image has no variant for this platform")
)

// Config holds the optional settings of Open. The zero value of each field
// means the default noted beside it.
type Config struct {
	Socket      string // "" = DefaultSocket
	Namespace   string // containerd namespace; "" = DefaultNamespace
	Snapshotter string // "" = DefaultSnapshotter (overlayfs)
	LogDir      string // containers' stdout/stderr files; "" = DefaultLogDir
	// PlainHTTP lists the registry hosts (host:port as in image
	// references, e.g. 127.0.0.1:5000) reached over plain HTTP; every other
	// registry is reached over HTTPS. Empty = none.
	PlainHTTP []string
}

// Runtime is a connection to containerd, confined to one namespace.
type Runtime struct {
	c           *client.Client
	ns          string
	snapshotter string
	logDir      string
	platform    platforms.MatchComparer
	hosts       docker.RegistryHosts
	rt          *rtBudget
}

// Open connects to containerd and checks that it answers. When no daemon
// answers, the error matches ErrUnavailable and says how to start one.
func Open(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.LogDir == "" {
		cfg.LogDir = DefaultLogDir
	}
	const howToStart = "start containerd (scripts/dev-setup.sh containerd, or systemctl start containerd)"
	if _, err := os.Stat(cfg.Socket); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no socket at %s: %s", ErrUnavailable, cfg.Socket, howToStart)
		}
		return nil, fmt.Errorf("%w: %v: run the agent as root (or as a user that may use %s)", ErrUnavailable, err, cfg.Socket)
	}
	// The strict host platform: an arm64 Pi takes linux/arm64 only, never
	// linux/arm/v7, so the image it runs is the one that was tested for it.
	platform := platforms.DefaultStrict()
	c, err := client.New(cfg.Socket,
		client.WithDefaultNamespace(cfg.Namespace),
		client.WithDefaultPlatform(platform),
		client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %s", ErrUnavailable, err, howToStart)
	}
	pctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, cfg.Namespace), 5*time.Second)
	defer cancel()
	if _, err := c.Version(pctx); err != nil {
		c.Close()
		if os.Geteuid() != 0 {
			return nil, fmt.Errorf("%w: containerd at %s does not answer (%v): run the agent as root", ErrUnavailable, cfg.Socket, err)
		}
		return nil, fmt.Errorf("%w: containerd at %s does not answer (%v): %s", ErrUnavailable, cfg.Socket, err, howToStart)
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		c.Close()
		return nil, fmt.Errorf("containers: log directory: %w", err)
	}
	plain := map[string]bool{}
	for _, h := range cfg.PlainHTTP {
		plain[h] = true
	}
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithAuthorizer(docker.NewDockerAuthorizer()),
		docker.WithPlainHTTP(func(host string) (bool, error) { return plain[host], nil }))
	return &Runtime{c: c, ns: cfg.Namespace, snapshotter: cfg.Snapshotter, logDir: cfg.LogDir, rt: newRTBudget(cfg.Namespace),
		platform: platform, hosts: hosts}, nil
}

// Close closes the connection; containers keep running.
func (r *Runtime) Close() error { return r.c.Close() }

// Platform is the host platform that Pull takes from an image index, as
// "os/arch[/variant]".
func (r *Runtime) Platform() string { return platforms.DefaultString() }

func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.ns)
}

func (r *Runtime) resolver() remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: r.hosts})
}

// classify maps containerd's error classes onto this package's sentinels,
// keeping containerd's error in the chain.
func classify(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%w: %s: %w", ErrNotFound, msg, err)
	case errdefs.IsAlreadyExists(err):
		return fmt.Errorf("%w: %s: %w", ErrExists, msg, err)
	case errdefs.IsUnavailable(err):
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, msg, err)
	}
	return fmt.Errorf("containers: %s: %w", msg, err)
}
