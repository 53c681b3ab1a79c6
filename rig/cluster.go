package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skyswap/skyswap/loopback"
)

// ClusterConfig configures StartCluster. Bin and Dir are required; every
// other zero value means the default noted beside it.
type ClusterConfig struct {
	// Bin is the nats-server binary: make build builds it into bin/ from
	// the nats-server module go.mod pins (BuildNATSServer).
	Bin string
	// Dir holds each node's configuration, JetStream store and log.
	Dir string
	// Nodes is the cluster's size; 0 means 3.
	Nodes int
	// Logs receives the nodes' output; nil discards it.
	Logs io.Writer
}

// Cluster is a NATS cluster on loopback whose every node serves MQTT with
// JetStream: the fleet's broker when one machine is not enough. Sessions,
// retained messages and QoS 1 messages in flight live in JetStream
// streams replicated on every node (three at most), so a client of a node
// that dies reconnects to another and finds its session there.
type Cluster struct {
	Nodes []*Node
	// URL is every node's MQTT listener, comma-separated: what a drone,
	// the ground and dronectl take as their broker.
	URL string
}

// Node is one nats-server of a Cluster.
type Node struct {
	Name    string
	MQTT    string // tcp://127.0.0.1:<port>
	Monitor string // http://127.0.0.1:<port>
	conf    string
	logs    io.Writer
	bin     string
	proc    *Proc
}

// clusterConf is a node's configuration: its ports, the routes to every
// node, JetStream (without a limit on a stream's consumers: MQTT makes one
// per QoS 1 subscription, a drone each), and the MQTT listener, whose
// streams JetStream replicates on min(3, nodes) of them.
const clusterConf = `server_name: %[1]s
listen: 127.0.0.1:%[2]d
http: 127.0.0.1:%[3]d
jetstream {
  store_dir: %[4]q
  # One consumer of $MQTT_msgs per QoS 1 subscription: a drone each, and
  # more than nats-server's default limit of 1,000 per stream for a fleet.
  limits { default_max_consumers: -1 }
}
cluster {
  name: skyswap
  listen: 127.0.0.1:%[5]d
  routes: [%[6]s]
}
mqtt { listen: 127.0.0.1:%[7]d }
`

// BuildNATSServer builds the nats-server that go.mod pins into dir and
// returns its path. It needs the Go toolchain; make build does the same.
func BuildNATSServer(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "nats-server")
	return out, goBuild(ctx, out, "github.com/nats-io/nats-server/v2", "", "", "")
}

// StartCluster writes each node's configuration, starts the nodes and
// returns once every node's JetStream is healthy and its MQTT listener
// accepts connections.
func StartCluster(ctx context.Context, cfg ClusterConfig) (c *Cluster, err error) {
	if cfg.Bin == "" || cfg.Dir == "" {
		return nil, errors.New("rig: ClusterConfig needs Bin and Dir")
	}
	n := cfg.Nodes
	if n == 0 {
		n = 3
	}
	free, err := loopback.Ports(4 * n)
	if err != nil {
		return nil, fmt.Errorf("rig: cluster: %w", err)
	}
	ports := make([][4]int, n) // client, monitor, route, mqtt
	var routes []string
	for i := range ports {
		ports[i] = [4]int(free[4*i:])
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i][2]))
	}
	c = &Cluster{}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	var urls []string
	for i, p := range ports {
		name := fmt.Sprintf("n%d", i+1)
		dir := mkdir(cfg.Dir, name)
		nd := &Node{Name: name, MQTT: fmt.Sprintf("tcp://127.0.0.1:%d", p[3]), Monitor: fmt.Sprintf("http://127.0.0.1:%d", p[1]),
			conf: filepath.Join(dir, "nats.conf"), logs: cfg.Logs, bin: cfg.Bin}
		conf := fmt.Sprintf(clusterConf, name, p[0], p[1], filepath.Join(dir, "js"), p[2], strings.Join(routes, ", "), p[3])
		if err := os.WriteFile(nd.conf, []byte(conf), 0o600); err != nil {
			return c, fmt.Errorf("rig: cluster: %w", err)
		}
		c.Nodes = append(c.Nodes, nd)
		urls = append(urls, nd.MQTT)
	}
	c.URL = strings.Join(urls, ",")
	for _, nd := range c.Nodes {
		if err := nd.start(); err != nil {
			return c, err
		}
	}
	return c, c.ready(ctx)
}

// ready waits until every node is ready, and fails as soon as any node
// exits: a new cluster elects no JetStream leader until every node its
// routes name has joined, so the others would wait forever.
func (c *Cluster) ready(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, nd := range c.Nodes {
		go func() {
			select {
			case <-nd.proc.Done():
				cancel(fmt.Errorf("rig: nats-server %s exited at start: %v (its log: the cluster's Logs)", nd.Name, nd.proc.Err()))
			case <-ctx.Done():
			}
		}()
	}
	for _, nd := range c.Nodes {
		if err := nd.ready(ctx); err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
	}
	return nil
}

func (nd *Node) start() error {
	var err error
	nd.proc, err = Start(nd.bin, nil, nd.logs, "-c", nd.conf)
	return err
}

// ready waits until the node's JetStream is healthy (/healthz) and its
// MQTT listener accepts a connection.
func (nd *Node) ready(ctx context.Context) error {
	hc := http.Client{Timeout: 2 * time.Second}
	healthy := func() bool {
		resp, err := hc.Get(nd.Monitor + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(nd.MQTT, "tcp://"), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	if err := nd.proc.Await(ctx, "nats-server "+nd.Name, 60*time.Second, 100*time.Millisecond, healthy); err != nil {
		return fmt.Errorf("%w (its log: the cluster's Logs)", err)
	}
	return nil
}

// Kill kills node i at once (SIGKILL): its clients lose their link.
func (c *Cluster) Kill(i int) { c.Nodes[i].proc.Kill() }

// Restart starts node i again after Kill, with its store, and waits until
// it is healthy.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	nd := c.Nodes[i]
	if err := nd.start(); err != nil {
		return err
	}
	return nd.ready(ctx)
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, nd := range c.Nodes {
		if nd.proc != nil {
			nd.proc.Stop(10 * time.Second)
		}
	}
}
