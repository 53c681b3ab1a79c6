package loopback

import (
	"fmt"
	"net"
	"testing"
)

// TestPorts: the ports are distinct, below the ephemeral range, and free:
// a server can listen on each.
func TestPorts(t *testing.T) {
	ports, err := Ports(12)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d picked twice in %v", p, ports)
		}
		seen[p] = true
		if p < low || p >= ephemeralLow() {
			t.Errorf("port %d outside [%d, %d): the kernel may hand it to an outgoing connection", p, low, ephemeralLow())
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d was returned as free: %v", p, err)
		}
		ln.Close()
	}
}

// TestPickSkipsUsed: in a range of three ports of which two are in use,
// the third is the one picked, and asking for two fails.
func TestPickSkipsUsed(t *testing.T) {
	lo := threeFree(t)
	for _, p := range []int{lo, lo + 2} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	got, err := pick(1, lo, lo+3)
	if err != nil || len(got) != 1 || got[0] != lo+1 {
		t.Fatalf("pick(1) in [%d, %d) with %d and %d in use = %v, %v; want [%d]", lo, lo+3, lo, lo+2, got, err, lo+1)
	}
	if got, err := pick(2, lo, lo+3); err == nil {
		t.Fatalf("pick(2) with one port free = %v, want an error", got)
	}
}

// threeFree finds three consecutive free ports below the ephemeral range.
func threeFree(t *testing.T) int {
	t.Helper()
	for lo := low; lo+3 < ephemeralLow(); lo += 97 {
		ok := true
		for p := lo; p < lo+3 && ok; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if ok = err == nil; ok {
				ln.Close()
			}
		}
		if ok {
			return lo
		}
	}
	t.Fatal("no three consecutive free ports")
	return 0
}

// TestAddrs: n loopback addresses, no port twice.
func TestAddrs(t *testing.T) {
	addrs, err := Addrs(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 3 || addrs[0] == addrs[1] || addrs[1] == addrs[2] || addrs[0] == addrs[2] {
		t.Fatalf("Addrs(3) = %v, want three distinct addresses", addrs)
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s was returned as free: %v", a, err)
		}
		defer ln.Close()
	}
}
