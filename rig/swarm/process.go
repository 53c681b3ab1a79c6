package swarm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is drone-swarm running as a process: the bench's swarm, apart
// from the process that measures it.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	stats *Stats // the newest stats line
	ready chan struct{}
}

// StartProcess runs bin (drone-swarm) with args and returns once it says
// every drone is online, or fails. Its JSON lines other than its own
// (the drones' warnings) go to logw.
func StartProcess(ctx context.Context, bin string, logw io.Writer, args ...string) (*Process, error) {
	if logw == nil {
		logw = io.Discard
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logw
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("swarm: start %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), ready: make(chan struct{})}
	go p.read(out, logw)
	select {
	case <-p.ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("swarm: drone-swarm exited at start: %v", cmd.ProcessState)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// read follows the swarm's stdout until it closes, then waits for it.
func (p *Process) read(out io.Reader, logw io.Writer) {
	defer close(p.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Swarm string `json:"swarm"`
			Stats
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Swarm == "" {
			fmt.Fprintln(logw, sc.Text())
			continue
		}
		switch line.Swarm {
		case "ready":
			close(p.ready)
		case "stats":
			p.mu.Lock()
			p.stats = &line.Stats
			p.mu.Unlock()
		}
	}
	p.cmd.Wait()
}

// Pid is the swarm's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop ends the swarm (SIGTERM: its drones say goodbye) and returns its
// final stats.
func (p *Process) Stop() (Stats, error) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		return Stats{}, errors.New("swarm: drone-swarm ignored SIGTERM for 60 s and was killed")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stats == nil {
		return Stats{}, errors.New("swarm: drone-swarm printed no stats")
	}
	return *p.stats, nil
}

func (p *Process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}
