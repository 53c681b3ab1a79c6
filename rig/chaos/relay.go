package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyswap/skyswap/rig/netdelay"
)

// Relay is a NATS-aware TCP relay for latency faults. App instances
// connect to NATS through it (their NATS URL names its address); it
// forwards each connection to the upstream server and learns the
// connection's name from the client's CONNECT line (nats.Name; the
// flight app gives its instance id). While a Delay is on for a name, the
// bytes of that name's connections are held for the delay in both
// directions, order kept (package netdelay); other connections pass
// untouched. A connection that names itself late, never, or behind TLS is
// never held.
type Relay struct {
	ln       net.Listener
	upstream string
	log      *slog.Logger
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[*relayConn]struct{}
	holds  map[string][]*time.Duration // by connection name; the longest applies
}

// relayConn is one client connection and its upstream; name is "" until
// the client's CONNECT names it, and both are guarded by the Relay's mu.
type relayConn struct {
	client, server net.Conn
	name           string
	delay          atomic.Int64 // ns
}

// maxConnectLine bounds the CONNECT line the relay reads for the name
// (a JWT and a signature fit); a longer first line passes unnamed.
const maxConnectLine = 64 << 10

// ListenRelay listens on listen (host:port) and relays every connection
// to the NATS server at upstream (host:port). Close stops it.
func ListenRelay(listen, upstream string, log *slog.Logger) (*Relay, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("chaos: NATS relay on %s: %w: give a free host:port with -nats-listen", listen, err)
	}
	r := &Relay{ln: ln, upstream: upstream, log: log, conns: map[*relayConn]struct{}{}, holds: map[string][]*time.Duration{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the relay's address, host:port.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Delay holds the traffic of every connection named name, now and until
// release, for d; with several Delays on one name the longest applies.
// It returns how many connections of that name are open now. release
// lets go of what waits (in order) and may be called more than once.
func (r *Relay) Delay(name string, d time.Duration) (conns int, release func()) {
	h := &d
	r.mu.Lock()
	r.holds[name] = append(r.holds[name], h)
	conns = r.apply(name)
	r.mu.Unlock()
	var once sync.Once
	return conns, func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.holds[name] = slices.DeleteFunc(r.holds[name], func(x *time.Duration) bool { return x == h })
			if len(r.holds[name]) == 0 {
				delete(r.holds, name)
			}
			r.apply(name)
		})
	}
}

// apply sets the delay of name's connections and counts them; r.mu held.
func (r *Relay) apply(name string) int {
	d := r.delayOf(name)
	n := 0
	for c := range r.conns {
		if c.name == name {
			c.delay.Store(int64(d))
			n++
		}
	}
	return n
}

// delayOf is the longest hold on name; r.mu held.
func (r *Relay) delayOf(name string) time.Duration {
	var d time.Duration
	for _, h := range r.holds[name] {
		d = max(d, *h)
	}
	return d
}

// Close lifts every delay, stops accepting, closes every connection and
// waits for them.
func (r *Relay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	r.closed = true
	clear(r.holds)
	for c := range r.conns {
		c.delay.Store(0) // what waits leaves (or fails) at once
		c.client.Close()
		c.server.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Error("relay stopped accepting", "err", err)
			}
			return
		}
		r.wg.Add(1)
		go r.serve(in)
	}
}

// serve connects one client to the upstream server and relays both ways.
func (r *Relay) serve(in net.Conn) {
	defer r.wg.Done()
	out, err := net.DialTimeout("tcp", r.upstream, 5*time.Second)
	if err != nil {
		r.log.Error("relay: the NATS upstream does not answer; check -nats-upstream", "upstream", r.upstream, "err", err)
		in.Close()
		return
	}
	c := &relayConn{client: in, server: out}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
	go r.toClient(c)
	r.toServer(c)
}

func (c *relayConn) hold() time.Duration { return time.Duration(c.delay.Load()) }

// toServer reads the client's first line for its name, then forwards
// everything, that line included, through the delay queue.
func (r *Relay) toServer(c *relayConn) {
	defer r.drop(c)
	br := bufio.NewReaderSize(c.client, maxConnectLine)
	line, err := br.ReadSlice('\n')
	first := append([]byte(nil), line...)
	if err == nil {
		r.name(c, connectName(first))
	}
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		c.server.Write(first)
		return
	}
	netdelay.Copy(c.server, io.MultiReader(bytes.NewReader(first), br), c.hold)
}

func (r *Relay) toClient(c *relayConn) {
	defer r.wg.Done()
	defer r.drop(c)
	netdelay.Copy(c.client, c.server, c.hold)
}

// name records the connection's name and applies the holds on it.
func (r *Relay) name(c *relayConn, name string) {
	if name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.name = name
	c.delay.Store(int64(r.delayOf(name)))
	r.log.Info("relay: connection named", "name", name, "from", c.client.RemoteAddr().String())
}

// drop closes both ends (the other direction then ends too) and forgets
// the connection.
func (r *Relay) drop(c *relayConn) {
	c.client.Close()
	c.server.Close()
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// connectName is the "name" of a NATS CONNECT line ("CONNECT {json}\r\n";
// the verb in any case, a space or tab after it), or "".
func connectName(line []byte) string {
	line = bytes.TrimSpace(line)
	i := bytes.IndexAny(line, " \t")
	if i < 0 || !bytes.EqualFold(line[:i], []byte("CONNECT")) {
		return ""
	}
	var opts struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(bytes.TrimSpace(line[i:]), &opts) != nil {
		return ""
	}
	return opts.Name
}
