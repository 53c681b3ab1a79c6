package brokertest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from a loopback port to a target (the
// broker), and can cut them abruptly: what a drone flying out of range
// looks like to the broker, which then publishes the drone's last will.
type Proxy struct {
	URL  string // tcp://127.0.0.1:<port>
	Addr string // 127.0.0.1:<port>

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	refuse bool
	conns  map[net.Conn]struct{}
}

// NewProxy listens on a free loopback port and forwards to target
// (host:port); it stops when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("brokertest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.URL = "tcp://" + p.Addr
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			abort(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			abort(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	// One direction ended: end both, abruptly, as a dead link would.
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
	abort(dst)
	abort(src)
}

// Cut closes every forwarded connection at once, with a TCP reset on
// both sides: no MQTT DISCONNECT is sent.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		abort(c)
	}
}

// Refuse makes the proxy close new connections at once (on) or forward
// them again (off): a link that stays down.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// abort closes c with a reset (SO_LINGER 0) rather than an orderly FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
