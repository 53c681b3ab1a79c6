package rig

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/agent/command"
	"github.com/skyswap/skyswap/agent/containers"
	"github.com/skyswap/skyswap/agent/report"
	"github.com/skyswap/skyswap/controller/push"
	"github.com/skyswap/skyswap/images/build"
	"github.com/skyswap/skyswap/loopback"
)

// StackConfig configures StartStack. The zero value of each optional field
// means the default noted beside it.
type StackConfig struct {
	Dir   string // required: keys, the agent's state, logs and the simulator's socket go here
	Sim   string // drone-sim binary (required)
	Agent string // drone-agent binary (required)
	// ModuleDir is a directory in the skyswap module, where the flight
	// images are built; "" = the current directory.
	ModuleDir string
	// Versions of flight built for this machine's platform and pushed as
	// flight:<version>; nil = v1, v2.
	Versions  []string
	Namespace string   // containerd namespace, emptied at start and by Close; "" = skyswap-demo
	Drone     string   // the drone's id; "" = demo
	SimEnv    []string // SIM_* settings for drone-sim
	// AppEnv are FLIGHT_* settings for every app instance besides the bus
	// (FLIGHT_PATTERN=box); FLIGHT_ON_TERM defaults to exit.
	AppEnv    []string
	Probation time.Duration // hand-over probation; 0 = the agent's default (coordinator.DefaultProbation)
	// SourceDateEpoch stamps the flight images (build.Config); 0 = the
	// stack's start time, so that its releases are new to containerd
	// (which shares content across namespaces: a release pulled by an
	// earlier run would fetch nothing) and a pull costs what it costs a
	// drone that never had it.
	SourceDateEpoch int64
	Logs            io.Writer // drone-sim's, drone-agent's and the ground's output; nil = discarded
	// AgentEnv are AGENT_* settings added after the stack's own (a key
	// given again wins), e.g. AGENT_APP_NATS_URL=nats://<skyswap-chaos's
	// relay>; nil = none.
	AgentEnv []string
	// Ground is the dronectl binary (required): `dronectl ground` is the
	// broker and the registry (its embedded ones) and serves the page, as
	// on a real ground.
	Ground string
	// GroundListen is the ground's page, host:port; "" = a free loopback
	// port.
	GroundListen string
}

// Stack is the product on one machine, all on loopback: the ground station
// (`dronectl ground`: the MQTT broker, the registry holding the flight
// releases, the page), the virtual drone, and drone-agent as a process
// driving containerd. The ground side is whoever holds KeyFile: dronectl
// with DronectlEnv, the ground station's page, or controller/push.
type Stack struct {
	Drone        string
	Namespace    string
	BrokerURL    string // the MQTT broker, tcp://127.0.0.1:<port>
	RegistryHost string // the registry, 127.0.0.1:<port>
	Ground       *GroundStation
	Refs         map[string]string        // version -> host/flight:<version> (a tag; dronectl resolves it)
	Indexes      map[string]v1.ImageIndex // version -> the index pushed
	Platform     v1.Platform              // the platform the images were built for (this machine's)
	Sim          *Sim
	Agent        *Proc
	KeyFile      string             // the ground's private key (dronectl -key)
	Key          ed25519.PrivateKey // the same key
	KeyID        string
	NATS         string // the agent's embedded on-board NATS, host:port
	logDir       string
}

// StartStack builds and pushes the flight images, starts the broker, the
// simulator and drone-agent, and returns once the agent has connected.
// Nothing is flying yet: the first command deploys. containerd must
// answer on its default socket (scripts/dev-setup.sh containerd starts it).
func StartStack(ctx context.Context, cfg StackConfig) (s *Stack, err error) {
	if cfg.Dir == "" || cfg.Sim == "" || cfg.Agent == "" || cfg.Ground == "" {
		return nil, errors.New("rig: StackConfig needs Dir, Sim, Agent and Ground")
	}
	if cfg.Versions == nil {
		cfg.Versions = []string{"v1", "v2"}
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "skyswap-demo"
	}
	if cfg.Drone == "" {
		cfg.Drone = "demo"
	}
	if cfg.SourceDateEpoch == 0 {
		cfg.SourceDateEpoch = time.Now().Unix()
	}
	s = &Stack{Drone: cfg.Drone, Namespace: cfg.Namespace, Refs: map[string]string{}, Indexes: map[string]v1.ImageIndex{},
		Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, logDir: filepath.Join(cfg.Dir, "containers")}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// containerd first: without it nothing else is worth starting.
	if err := s.purge(ctx); err != nil {
		return s, err
	}
	keys := mkdir(cfg.Dir, "keys")
	if err := s.makeKey(keys); err != nil {
		return s, err
	}
	if err := s.startBackends(ctx, cfg); err != nil {
		return s, err
	}
	for _, v := range cfg.Versions {
		idx, err := build.Flight(ctx, build.Config{Version: v, Dir: cfg.ModuleDir, Platforms: []v1.Platform{s.Platform},
			SourceDateEpoch: cfg.SourceDateEpoch})
		if err != nil {
			return s, fmt.Errorf("rig: build flight %s: %w", v, err)
		}
		ref := s.RegistryHost + "/flight:" + v
		if _, err := build.Push(ctx, idx, ref, build.PushConfig{}); err != nil {
			return s, fmt.Errorf("rig: push %s: %w", ref, err)
		}
		s.Refs[v], s.Indexes[v] = ref, idx
	}
	simDir := mkdir(cfg.Dir, "sim")
	os.Chmod(simDir, 0o755) // the containers' user must reach the socket
	if s.Sim, err = StartSim(ctx, cfg.Sim, simDir, cfg.SimEnv, cfg.Logs); err != nil {
		return s, err
	}
	if err := s.startAgent(ctx, cfg, keys, simDir); err != nil {
		return s, err
	}
	return s, nil
}

// startAgent starts drone-agent on the stack and waits until it is
// online.
func (s *Stack) startAgent(ctx context.Context, cfg StackConfig, keys, simDir string) error {
	natsAddr, err := loopback.Addr()
	if err != nil {
		return err
	}
	s.NATS = natsAddr
	appEnv := append([]string{"FLIGHT_BUS=sim:/run/skyswap-sim/" + filepath.Base(s.Sim.Socket)}, cfg.AppEnv...)
	if !slices.ContainsFunc(appEnv, func(kv string) bool { return strings.HasPrefix(kv, "FLIGHT_ON_TERM=") }) {
		appEnv = append(appEnv, "FLIGHT_ON_TERM=exit") // a retired instance leaves at once
	}
	env := []string{
		"AGENT_DRONE=" + cfg.Drone,
		"AGENT_BROKER_URL=" + s.BrokerURL,
		"AGENT_TRUSTED_KEYS=" + s.KeyID + "=" + filepath.Join(keys, "ground.pub"),
		"AGENT_STATE_DIR=" + mkdir(cfg.Dir, "agent"),
		"AGENT_NAMESPACE=" + cfg.Namespace,
		"AGENT_LOG_DIR=" + s.logDir,
		"AGENT_PLAIN_HTTP=" + s.RegistryHost,
		"AGENT_NATS_PORT=" + natsAddr[strings.LastIndex(natsAddr, ":")+1:],
		"AGENT_APP_ENV=" + strings.Join(appEnv, ";"),
		"AGENT_MOUNTS=" + simDir + ":/run/skyswap-sim",
		"AGENT_LEASE=sim:" + s.Sim.Socket,
		"AGENT_GRACE_S=5",
	}
	if cfg.Probation > 0 {
		env = append(env, "AGENT_PROBATION_S="+strconv.FormatFloat(cfg.Probation.Seconds(), 'f', -1, 64))
	}
	env = append(env, cfg.AgentEnv...)
	// The agent publishes its online state once it has subscribed to its
	// commands: from then on a command reaches it.
	watch, err := push.Watch(ctx, push.Config{Broker: s.BrokerURL}, broker.Topics(s.Drone).State)
	if err != nil {
		return fmt.Errorf("rig: %w", err)
	}
	defer watch.Close()
	if s.Agent, err = Start(cfg.Agent, env, cfg.Logs); err != nil {
		return err
	}
	return s.awaitAgent(ctx, watch.Messages())
}

// makeKey makes the ground's key pair in dir.
func (s *Stack) makeKey(dir string) error {
	pub, priv, err := command.GenerateKey()
	if err != nil {
		return err
	}
	s.KeyFile, s.Key, s.KeyID = filepath.Join(dir, "ground.key"), priv, command.KeyID(pub)
	if err := command.WritePrivateKey(s.KeyFile, priv); err != nil {
		return err
	}
	return command.WritePublicKey(filepath.Join(dir, "ground.pub"), pub)
}

// startBackends starts the ground station: the broker and the registry.
func (s *Stack) startBackends(ctx context.Context, cfg StackConfig) error {
	var err error
	if s.Ground, err = StartGround(ctx, GroundConfig{Bin: cfg.Ground, Dir: mkdir(cfg.Dir, "ground"), Listen: cfg.GroundListen,
		KeyFile: s.KeyFile, Logs: cfg.Logs}); err != nil {
		return err
	}
	s.BrokerURL, s.RegistryHost = s.Ground.BrokerURL, s.Ground.Registry
	return nil
}

// awaitAgent waits until the agent says it is online.
func (s *Stack) awaitAgent(ctx context.Context, states <-chan push.Message) error {
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-states:
			var st report.State
			if json.Unmarshal(m.Payload, &st) == nil && st.Online && !m.Retained {
				return nil
			}
		case <-s.Agent.Done():
			return fmt.Errorf("rig: drone-agent exited at start: %v", s.Agent.Err())
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("rig: drone-agent did not come online on the broker within 30 s")
		}
	}
}

// RegistryBlobBytes is how many blob bytes the registry has served.
func (s *Stack) RegistryBlobBytes(ctx context.Context) (int64, error) {
	st, err := s.Ground.Stats(ctx)
	return st.Registry.BlobBytes, err
}

// DronectlEnv is the environment under which `dronectl push flight:v2`
// needs no flags.
func (s *Stack) DronectlEnv() []string {
	return []string{"DRONECTL_BROKER=" + s.BrokerURL, "DRONECTL_DRONE=" + s.Drone, "DRONECTL_KEY=" + s.KeyFile,
		"DRONECTL_REGISTRY=" + s.RegistryHost}
}

// AppLogTail is the last n bytes of app instance id's log (stdout and
// stderr, as containerd's shim wrote them), or why it cannot be read.
func (s *Stack) AppLogTail(id string, n int64) string {
	f, err := os.Open(containers.LogFile(s.logDir, id))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Land stops the agent (the app keeps flying without it) and sends
// SIGTERM to the running app instances: the owner lands when its
// FLIGHT_ON_TERM is land (StackConfig.AppEnv), then exits. It waits up to
// grace for each, then kills it.
func (s *Stack) Land(ctx context.Context, grace time.Duration) error {
	if err := s.Agent.Stop(10 * time.Second); err != nil {
		return err
	}
	return s.eachContainer(ctx, func(rt *containers.Runtime, c containers.Status) error {
		if !c.Running {
			return nil
		}
		if err := rt.Stop(ctx, c.ID, grace); err != nil {
			return fmt.Errorf("rig: land %s: %w", c.ID, err)
		}
		return nil
	})
}

// eachContainer calls fn for each container in the namespace.
func (s *Stack) eachContainer(ctx context.Context, fn func(*containers.Runtime, containers.Status) error) error {
	rt, err := containers.Open(ctx, containers.Config{Namespace: s.Namespace, LogDir: s.logDir})
	if err != nil {
		return fmt.Errorf("rig: %w", err)
	}
	defer rt.Close()
	list, err := rt.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range list {
		if err := fn(rt, c); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the agent, removes every container and image in the
// namespace (the drone drops: this is the end of the flight), and stops
// the simulator and the ground station.
func (s *Stack) Close() {
	if s.Agent != nil {
		s.Agent.Stop(10 * time.Second)
	}
	s.purge(context.Background())
	if s.Sim != nil {
		s.Sim.Stop()
	}
	if s.Ground != nil {
		s.Ground.Stop()
	}
}

// purge stops and removes the namespace's containers and deletes its
// images, so a run starts with nothing pulled (content shared with other
// namespaces stays, as containerd shares it).
func (s *Stack) purge(ctx context.Context) error {
	err := s.eachContainer(ctx, func(rt *containers.Runtime, c containers.Status) error {
		rt.Stop(ctx, c.ID, 5*time.Second)
		if err := rt.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("rig: remove container %s: %w", c.ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c, err := client.New(containers.DefaultSocket, client.WithDefaultNamespace(s.Namespace))
	if err != nil {
		return fmt.Errorf("rig: containerd: %w", err)
	}
	defer c.Close()
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		return fmt.Errorf("rig: list images in %s: %w", s.Namespace, err)
	}
	for _, img := range imgs {
		if err := c.ImageService().Delete(ctx, img.Name, images.SynchronousDelete()); err != nil {
			return fmt.Errorf("rig: remove image %s: %w", img.Name, err)
		}
	}
	return nil
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	os.MkdirAll(d, 0o700)
	return d
}

// FirstWrite returns when writer first drove the motors in [from, to]
// (CLOCK_MONOTONIC ns; 0 = the log's start / now), the moment a new owner
// took control, and the gap since the motor update before it (the previous
// owner's last), ms; 0 if writer's was the first in the window.
func (s *Stack) FirstWrite(ctx context.Context, writer string, from, to int64) (at int64, gapMs float64, err error) {
	ws, err := s.Sim.Writes(ctx, from, to)
	if err != nil {
		return 0, 0, err
	}
	var prev int64
	for _, w := range ws {
		if !w.Update || w.Refused {
			continue
		}
		if w.Writer == writer {
			if prev != 0 {
				gapMs = float64(w.T-prev) / 1e6
			}
			return w.T, gapMs, nil
		}
		prev = w.T
	}
	return 0, 0, fmt.Errorf("rig: %s never drove the motors in the window", writer)
}
