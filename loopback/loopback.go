// Package loopback picks free loopback TCP ports for servers that must be
// told their port before they start: the nodes of a NATS cluster, which
// name each other's route ports in their configurations, or a broker that
// restarts on the port its clients know.
//
// A port is picked below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range). The kernel gives ports in that range to
// every outgoing connection and every bind to port 0, so a port picked
// there and released could be taken by any process's next connection
// before the server binds it: on a busy machine a node of the cluster
// then fails to start. Below the range, only a process that asks for the
// number itself can take it.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// low is the lowest port picked: above the well-known and the common
// registered service ports (a registry on 5000, a web UI on 8080).
const low = 10000

// Ports returns n distinct loopback ports that were free when picked.
// Each is held (listened on) until all n are picked, so two pickers at
// once do not pick the same port.
func Ports(n int) ([]int, error) {
	high := ephemeralLow()
	if high-low < 1000 {
		return nil, fmt.Errorf("loopback: the ephemeral range starts at %d, which leaves too few ports above %d to pick from (net.ipv4.ip_local_port_range)", high, low)
	}
	return pick(n, low, high)
}

// pick picks n ports in [lo, hi).
func pick(n, lo, hi int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 100*n {
			return nil, fmt.Errorf("loopback: found %d free ports of %d in [%d, %d)", len(ports), n, lo, hi)
		}
		p := lo + rand.IntN(hi-lo)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // in use
		}
		held = append(held, ln)
		ports = append(ports, p)
	}
	return ports, nil
}

// Addr returns a loopback address (127.0.0.1:port) free when picked.
func Addr() (string, error) {
	a, err := Addrs(1)
	if err != nil {
		return "", err
	}
	return a[0], nil
}

// Addrs returns n loopback addresses on distinct ports, as Ports picks
// them: for one server with several listeners.
func Addrs(n int) ([]string, error) {
	ports, err := Ports(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i, p := range ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range; Linux's
// default when it cannot be read.
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo)
	}
	return lo
}
