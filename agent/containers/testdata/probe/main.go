// Command probe is the test image's entrypoint for package containers: it
// reports, one "key: value" line each, what a container sees (user, env,
// /dev, the root and /tmp filesystems, the bind mounts, the network) and
// then waits for SIGTERM.
//
// Settings (environment): PROBE_EXIT=n exits with n right after the report;
// PROBE_IGNORE_TERM=1 ignores SIGTERM (to exercise SIGKILL); PROBE_DIAL=addr
// connects to addr over TCP and sends "hello from probe"; PROBE_RO_DIR and
// PROBE_RW_DIR are bind-mount targets to read and write; PROBE_OPEN lists
// device paths to open read-write; PROBE_RT=1 tries SCHED_FIFO (priority 10)
// on its main thread.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	fmt.Printf("uid: %d\n", os.Getuid())
	fmt.Printf("gid: %d\n", os.Getgid())
	groups, _ := os.Getgroups()
	fmt.Printf("groups: %v\n", groups)
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		fmt.Printf("env: %s\n", e)
	}
	var devs []string
	if es, err := os.ReadDir("/dev"); err == nil {
		for _, e := range es {
			devs = append(devs, e.Name())
		}
	}
	fmt.Printf("dev: %s\n", strings.Join(devs, " "))
	for _, d := range strings.Fields(os.Getenv("PROBE_OPEN")) {
		f, err := os.OpenFile(d, os.O_RDWR, 0)
		fmt.Printf("open %s: %s\n", d, result(err))
		if err == nil {
			f.Close()
		}
	}
	fmt.Printf("write /: %s\n", result(os.WriteFile("/probe-root-write", []byte("x"), 0o644)))
	fmt.Printf("write /tmp: %s\n", result(os.WriteFile("/tmp/probe", []byte("x"), 0o644)))
	if d := os.Getenv("PROBE_RO_DIR"); d != "" {
		p, err := os.ReadFile(filepath.Join(d, "hello.txt"))
		fmt.Printf("read ro: %s %s\n", result(err), strings.TrimSpace(string(p)))
		fmt.Printf("write ro: %s\n", result(os.WriteFile(filepath.Join(d, "x"), []byte("x"), 0o644)))
	}
	if d := os.Getenv("PROBE_RW_DIR"); d != "" {
		err := os.WriteFile(filepath.Join(d, "from-probe.txt"), []byte("uid "+strconv.Itoa(os.Getuid())+"\n"), 0o644)
		fmt.Printf("write rw: %s\n", result(err))
	}
	if a := os.Getenv("PROBE_DIAL"); a != "" {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err == nil {
			_, err = c.Write([]byte("hello from probe\n"))
			c.Close()
		}
		fmt.Printf("dial %s: %s\n", a, result(err))
	}
	if os.Getenv("PROBE_RT") == "1" {
		fmt.Printf("rt: %s\n", result(fifo(10)))
	}
	if s := os.Getenv("PROBE_EXIT"); s != "" {
		n, _ := strconv.Atoi(s)
		fmt.Println("exit:", n)
		os.Exit(n)
	}
	sigs := make(chan os.Signal, 1)
	if os.Getenv("PROBE_IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM)
	}
	fmt.Println("ready")
	if os.Getenv("PROBE_IGNORE_TERM") != "" {
		for {
			time.Sleep(time.Hour) // a channel receive here would be a deadlock
		}
	}
	<-sigs
	fmt.Println("term")
}

// fifo puts the calling thread under SCHED_FIFO at prio.
func fifo(prio int32) error {
	runtime.LockOSThread() // for good: the thread leaves with the probe
	param := struct{ prio int32 }{prio}
	const schedFIFO = 1
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, schedFIFO, uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}

func result(err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	return "ok"
}
