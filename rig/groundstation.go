package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/skyswap/skyswap/loopback"
)

// GroundStation is `dronectl ground` running as a process: the fleet's
// MQTT broker (or a link to one), its registry and the web page, on
// loopback.
type GroundStation struct {
	URL       string // the page, http://127.0.0.1:<port>/
	BrokerURL string // tcp://127.0.0.1:<port>
	Registry  string // 127.0.0.1:<port>
	proc      *Proc
	client    http.Client
}

// GroundStats is the part of the station's /api/stats the rig reads.
type GroundStats struct {
	Clients  int    `json:"clients"`
	Dropped  uint64 `json:"dropped"`
	Registry struct {
		BlobBytes int64 `json:"blob_bytes"`
	} `json:"registry"`
	Fleet struct {
		Messages  map[string]uint64 `json:"messages"`
		Malformed uint64            `json:"malformed"`
	} `json:"fleet"`
}

// GroundConfig configures StartGround. Bin and Dir are required; every
// other zero value means the default noted beside it.
type GroundConfig struct {
	Bin     string    // dronectl
	Dir     string    // its data directory
	Listen  string    // the page, host:port; "" = a free loopback port
	KeyFile string    // its signing key; "" = the one it makes in Dir
	Broker  string    // the fleet's broker (a cluster's nodes, comma-separated); "" = its embedded one on a free port
	Logs    io.Writer // its output; nil = discarded
}

// StartGround runs dronectl ground with its embedded registry (and broker,
// unless cfg.Broker names one) on free loopback ports, and returns once
// the page answers.
func StartGround(ctx context.Context, cfg GroundConfig) (*GroundStation, error) {
	addrs, err := loopback.Addrs(3) // page, MQTT, registry
	if err != nil {
		return nil, err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = addrs[0]
	}
	g := &GroundStation{URL: "http://" + listen + "/", BrokerURL: "tcp://" + addrs[1], Registry: addrs[2],
		client: http.Client{Timeout: 5 * time.Second}}
	// -broker= and -registry=: the embedded ones, whatever DRONECTL_* say.
	args := []string{"ground", "-listen", listen, "-mqtt-listen", addrs[1], "-registry-listen", addrs[2], "-data", cfg.Dir,
		"-broker=" + cfg.Broker, "-registry="}
	if cfg.Broker != "" {
		g.BrokerURL = cfg.Broker
	}
	if cfg.KeyFile != "" {
		args = append(args, "-key", cfg.KeyFile)
	}
	bin, logw := cfg.Bin, cfg.Logs
	if g.proc, err = Start(bin, nil, logw, args...); err != nil {
		return nil, err
	}
	serving := func() bool {
		resp, err := g.client.Get(g.URL + "healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}
	if err := g.proc.Await(ctx, "dronectl ground", 30*time.Second, 50*time.Millisecond, serving); err != nil {
		g.proc.Kill()
		return nil, err
	}
	return g, nil
}

// Stats reads the station's counters.
func (g *GroundStation) Stats(ctx context.Context) (GroundStats, error) {
	var st GroundStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"api/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("rig: ground stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("rig: ground stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Kill kills the station at once (SIGKILL).
func (g *GroundStation) Kill() { g.proc.Kill() }

// Pid is the station's process id.
func (g *GroundStation) Pid() int { return g.proc.Pid() }

// Stop stops the station (SIGTERM, then SIGKILL after 10 s).
func (g *GroundStation) Stop() error { return g.proc.Stop(10 * time.Second) }
