package rig

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/rig/netdelay"
)

// DelayProxy forwards TCP connections on loopback to a target, holding
// every byte for the current delay in both directions: the fault injection
// for "the NATS path is slow for a while". Order is kept; lowering the delay
// releases what waits (package netdelay holds the bytes).
type DelayProxy struct {
	ln     net.Listener
	target string
	delay  atomic.Int64
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

// NewDelayProxy listens on a free loopback port and forwards to target.
func NewDelayProxy(target string) (*DelayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &DelayProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address, host:port.
func (p *DelayProxy) Addr() string { return p.ln.Addr().String() }

// SetDelay sets the delay applied from now on (and to bytes still waiting).
func (p *DelayProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Close stops the proxy and its connections.
func (p *DelayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst through the delay queue, then closes dst so the
// other side sees the end.
func (p *DelayProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	netdelay.Copy(dst, src, func() time.Duration { return time.Duration(p.delay.Load()) })
	dst.Close()
}
