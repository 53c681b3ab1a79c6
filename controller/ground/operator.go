package ground

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/controller/ground/web"
	"github.com/skyswap/skyswap/controller/push"
)

// maxRepos bounds the registry's repositories the push menu lists.
const maxRepos = 100

// operator is the page's web.Operator: the registry's images, and
// commands signed and followed by controller/push, one at a time per
// drone.
type operator struct {
	link     push.Config // Broker, Key and the rest; Drone per command
	registry string
	plain    bool
	log      *slog.Logger
	ctx      context.Context // the station's life: commands are followed until it ends

	mu   sync.Mutex
	busy map[string]bool // drones with a command being followed
	wg   sync.WaitGroup
}

var _ web.Operator = (*operator)(nil)

// Images lists every tag of every repository in the registry.
func (o *operator) Images(ctx context.Context) ([]string, error) {
	opts := []name.Option{}
	if o.plain {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(o.registry, opts...)
	if err != nil {
		return nil, fmt.Errorf("ground: registry %q: %w", o.registry, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	repos, err := remote.Catalog(ctx, reg, ropts...)
	if err != nil {
		return nil, fmt.Errorf("ground: list the registry %s: %w (is it up?)", o.registry, err)
	}
	var out []string
	for _, r := range repos[:min(len(repos), maxRepos)] {
		repo := reg.Repo(r)
		tags, err := remote.List(repo, ropts...)
		if err != nil {
			return nil, fmt.Errorf("ground: tags of %s: %w", r, err)
		}
		for _, t := range tags {
			out = append(out, r+":"+t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Push pins image in the registry and sends drone an update to it.
func (o *operator) Push(ctx context.Context, drone, image string) (string, error) {
	if err := broker.CheckDrone(drone); err != nil {
		return "", fmt.Errorf("%w: drone: %v", web.ErrInvalid, err)
	}
	ref, err := push.Resolve(ctx, image, o.registry, o.plain)
	switch {
	case errors.Is(err, push.ErrImageNotFound):
		return "", fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case err != nil:
		return "", err
	}
	return o.send(ctx, drone, push.Request{Kind: command.KindUpdate, Image: ref})
}

// Rollback sends drone a rollback to its previous release.
func (o *operator) Rollback(ctx context.Context, drone string) (string, error) {
	if err := broker.CheckDrone(drone); err != nil {
		return "", fmt.Errorf("%w: drone: %v", web.ErrInvalid, err)
	}
	return o.send(ctx, drone, push.Request{Kind: command.KindRollback})
}

// send signs and publishes req through push.Run, returns the command's id
// once the broker has it, and follows it to its outcome in the
// background (the drone's events reach the page through the intake).
func (o *operator) send(ctx context.Context, drone string, req push.Request) (string, error) {
	o.mu.Lock()
	if o.busy[drone] {
		o.mu.Unlock()
		return "", fmt.Errorf("%w: drone %s has a command in flight: wait for its outcome", web.ErrBusy, drone)
	}
	o.busy[drone] = true
	o.mu.Unlock()
	cfg := o.link
	cfg.Drone = drone
	cfg.Log = o.log
	sent := make(chan string, 1)
	done := make(chan error, 1)
	cfg.OnSent = func(c command.Command, _ time.Time) { sent <- c.ID }
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		res, err := push.Run(o.ctx, cfg, req)
		o.mu.Lock()
		delete(o.busy, drone)
		o.mu.Unlock()
		o.log.Info("command from the page ended", "drone", drone, "kind", req.Kind, "command", res.Command.ID,
			"final", res.Final.Phase, "outcome", res.Final.Outcome, "err", err)
		done <- err
	}()
	select {
	case id := <-sent:
		return id, nil
	case err := <-done:
		select {
		case id := <-sent: // sent, then failed: the page follows the events
			return id, nil
		default:
		}
		var ce *push.ConfigError
		var fe *command.FieldError
		if errors.As(err, &ce) || errors.As(err, &fe) {
			return "", fmt.Errorf("%w: %w", web.ErrInvalid, err)
		}
		return "", err
	case <-ctx.Done():
		return "", fmt.Errorf("ground: %s to drone %s: not sent yet: %w", req.Kind, drone, ctx.Err())
	}
}

// wait waits for the commands being followed (Close has ended them).
func (o *operator) wait() { o.wg.Wait() }
