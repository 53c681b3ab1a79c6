// Package brokertest is what tests of MQTT code need: Start runs a real
// Mosquitto on a free loopback port (optionally with the per-drone ACL,
// passwords or client certificates), Peer is a plain MQTT client for the
// other side (the ground station, or another drone), Proxy cuts a link
// abruptly, and Fake stands in for *broker.Client without any broker.
//
// Start skips the test when Mosquitto is not installed, but fails it when
// the environment variable CI is set: CI installs it (scripts/dev-setup.sh
// mosquitto).
package brokertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyswap/skyswap/agent/broker"
	"github.com/skyswap/skyswap/loopback"
)

// GroundUser is the user name of the ground station when Options.Drones
// turns authentication on. It may read and write fleet/#.
const GroundUser = "ground"

// Options says how Start configures Mosquitto. The zero value (or nil) is
// an anonymous broker where anyone may do anything.
type Options struct {
	// Drones turns authentication and the per-drone ACL on when not empty:
	// only these drones and GroundUser may connect. A drone's user name
	// is its id; it may read fleet/<id>/cmd and write fleet/<id>/#, and
	// nothing else. Passwords are Password(user), or certificates with
	// TLS.
	Drones []string
	// TLS makes the listener speak TLS (ssl://) with a CA made for the
	// test; clients then authenticate by certificate, whose common name
	// is the user name (Mosquitto's use_identity_as_username), and every
	// client needs one (CertFiles).
	TLS bool
}

// Password is the password Start gives user when Options.Drones is set
// and Options.TLS is not.
func Password(user string) string { return user + "-secret" }

// Mosquitto is a running (or stopped) broker, owned by one test.
type Mosquitto struct {
	URL  string // tcp://127.0.0.1:<port>, or ssl:// with Options.TLS
	Addr string // 127.0.0.1:<port>

	t    testing.TB // nil for Run: the methods that fail a test need Start
	opts Options
	bin  string
	dir  string
	conf string
	log  string
	pki  *pki // nil unless Options.TLS

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Binary returns the path of the mosquitto executable, or "" if it is not
// installed (it lives in /usr/sbin, often not in a user's PATH).
func Binary() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Start runs Mosquitto for the test on a free loopback port and stops it
// when the test ends (printing its log if the test failed). opts may be
// nil.
func Start(t testing.TB, opts *Options) *Mosquitto {
	t.Helper()
	if Binary() == "" {
		skipOrFail(t, "mosquitto is not installed: scripts/dev-setup.sh mosquitto (as root) installs it, or apt-get install mosquitto")
	}
	m, err := Run(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	m.t = t
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			log := m.Log()
			if lines := strings.Split(log, "\n"); len(lines) > 300 {
				log = fmt.Sprintf("[%d lines before]\n%s", len(lines)-300, strings.Join(lines[len(lines)-300:], "\n"))
			}
			t.Logf("brokertest: mosquitto log (%s):\n%s", m.log, log)
		}
	})
	return m
}

// Run is Start outside a test (the demo and the bench): Mosquitto on a
// free loopback port with its configuration, log and credentials in dir.
// The caller stops it with Stop; it dies with the calling process.
func Run(dir string, opts *Options) (*Mosquitto, error) {
	bin := Binary()
	if bin == "" {
		return nil, errors.New("mosquitto is not installed: scripts/dev-setup.sh mosquitto (as root) installs it, or apt-get install mosquitto")
	}
	m := &Mosquitto{bin: bin, dir: dir}
	if opts != nil {
		m.opts = *opts
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	m.log = filepath.Join(m.dir, "mosquitto.log")
	if m.opts.TLS {
		var err error
		if m.pki, err = newPKI(m.dir); err != nil {
			return nil, fmt.Errorf("make test certificates: %w", err)
		}
	}
	if len(m.opts.Drones) > 0 {
		for _, d := range m.opts.Drones {
			if err := broker.CheckDrone(d); err != nil || d == GroundUser {
				return nil, fmt.Errorf("Options.Drones: %q cannot be a drone id: %v", d, err)
			}
		}
		if err := m.writeACL(); err != nil {
			return nil, err
		}
		if !m.opts.TLS {
			if err := m.writePasswords(); err != nil {
				return nil, err
			}
		}
	}
	// A port picked free can still be taken by another picker before
	// mosquitto binds it: try a few.
	var err error
	for range 5 {
		var ports []int
		if ports, err = loopback.Ports(1); err != nil {
			continue
		}
		port := ports[0]
		m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		scheme := "tcp"
		if m.opts.TLS {
			scheme = "ssl"
		}
		m.URL = scheme + "://" + m.Addr
		if err = m.writeConfig(port); err != nil {
			return nil, err
		}
		if err = m.start(); err == nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("start mosquitto: %w", err)
}

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: CI must install mosquitto, e.g. scripts/dev-setup.sh mosquitto)", msg)
	}
	t.Skip(msg)
}

func (m *Mosquitto) writeConfig(port int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# generated by brokertest in %s\n", m.dir)
	if os.Geteuid() == 0 {
		// As root, mosquitto switches to the user "mosquitto", which
		// cannot read the test's temporary directory: stay who we are.
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&b, "user %s\n", u.Username)
		}
	}
	b.WriteString("persistence false\n")
	// Every packet is logged (debug): the log is printed only when a test
	// fails, and then it says what went over the wire.
	b.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_type debug\n")
	b.WriteString("connection_messages true\nlog_timestamp true\nlog_timestamp_format %H:%M:%S\n")
	if len(m.opts.Drones) > 0 {
		b.WriteString("allow_anonymous false\n")
		fmt.Fprintf(&b, "acl_file %s\n", filepath.Join(m.dir, "acl"))
		if !m.opts.TLS {
			fmt.Fprintf(&b, "password_file %s\n", filepath.Join(m.dir, "passwd"))
		}
	} else {
		b.WriteString("allow_anonymous true\n")
	}
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	if m.opts.TLS {
		fmt.Fprintf(&b, "cafile %s\ncertfile %s\nkeyfile %s\n", m.pki.caFile, m.pki.serverCert, m.pki.serverKey)
		b.WriteString("require_certificate true\nuse_identity_as_username true\n")
	}
	return os.WriteFile(m.conf, []byte(b.String()), 0o600)
}

// writeACL writes the per-drone ACL: the same rules deploy/ gives a fleet.
func (m *Mosquitto) writeACL() error {
	acl := `# generated by brokertest
# The ground station reads every drone's reports and sends commands.
user ` + GroundUser + `
topic readwrite fleet/#

# A drone (user name = drone id) reads its own commands and writes its own
# topics, nothing else.
pattern read fleet/%u/cmd
pattern write fleet/%u/#
`
	return os.WriteFile(filepath.Join(m.dir, "acl"), []byte(acl), 0o600)
}

// writePasswords writes the password file of GroundUser and the drones:
// with mosquitto_passwd when it is installed (it comes with mosquitto),
// else hashed here in Mosquitto 2's PBKDF2-SHA512 format.
func (m *Mosquitto) writePasswords() error {
	users := append([]string{GroundUser}, m.opts.Drones...)
	sort.Strings(users[1:])
	path := filepath.Join(m.dir, "passwd")
	if tool := passwdTool(); tool != "" {
		var plain strings.Builder
		for _, u := range users {
			fmt.Fprintf(&plain, "%s:%s\n", u, Password(u))
		}
		if err := os.WriteFile(path, []byte(plain.String()), 0o600); err != nil {
			return err
		}
		out, err := exec.Command(tool, "-U", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -U %s: %v: %s", tool, path, err, out)
		}
		return nil
	}
	var b strings.Builder
	for _, u := range users {
		h, err := hashPassword(Password(u))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// passwdTool is mosquitto_passwd's path, "" if absent. A variable so that
// a test can take the fallback.
var passwdTool = func() string {
	if p, err := exec.LookPath("mosquitto_passwd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// start runs mosquitto and waits until it accepts connections.
func (m *Mosquitto) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	mark, _ := logf.Seek(0, 2)
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited at start (%v): %s", cmd.ProcessState, m.logSince(mark))
		default:
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			// Listening is not enough: the port might be another
			// process's. Mosquitto logs that it runs once it listens.
			if strings.Contains(m.logSince(mark), " running") {
				m.cmd, m.exited = cmd, exited
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("mosquitto did not listen on %s within 10 s: %s", m.Addr, m.logSince(mark))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *Mosquitto) logSince(off int64) string {
	b, _ := os.ReadFile(m.log)
	if off > int64(len(b)) {
		off = 0
	}
	return string(bytes.TrimSpace(b[off:]))
}

// Log returns everything mosquitto has logged so far.
func (m *Mosquitto) Log() string { return m.logSince(0) }

// Stop stops mosquitto (SIGTERM, then SIGKILL after 5 s) and waits for it
// to exit. Clients see their connection close. Stopping a stopped broker
// does nothing. Without persistence, the broker forgets sessions and
// retained messages.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd, m.exited = nil, nil
}

// Restart stops mosquitto if it runs and starts it again on the same port
// with the same configuration.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.Stop()
	var err error
	for range 50 { // the port was ours a moment ago; give the kernel a moment if needed
		if err = m.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("brokertest: restart mosquitto on %s: %v", m.Addr, err)
}

// Config returns a broker.Config for drone with this broker's URL and the
// drone's credentials (password or certificate); the caller adds the rest.
func (m *Mosquitto) Config(drone string) broker.Config {
	m.t.Helper()
	cfg := broker.Config{URL: m.URL, Drone: drone}
	switch {
	case m.opts.TLS:
		cert, key := m.CertFiles(drone)
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = m.pki.caFile, cert, key
	case len(m.opts.Drones) > 0:
		cfg.Username, cfg.Password = drone, Password(drone)
	}
	return cfg
}

// CAFile is the PEM file of the test CA (Options.TLS), "" without TLS.
func (m *Mosquitto) CAFile() string {
	if m.pki == nil {
		return ""
	}
	return m.pki.caFile
}

// CertFiles returns a client certificate and key for user (its common
// name), made on first use. Only with Options.TLS.
func (m *Mosquitto) CertFiles(user string) (certFile, keyFile string) {
	m.t.Helper()
	if m.pki == nil {
		m.t.Fatalf("brokertest: CertFiles(%q) without Options.TLS", user)
	}
	cert, key, err := m.pki.client(user)
	if err != nil {
		m.t.Fatalf("brokertest: client certificate for %q: %v", user, err)
	}
	return cert, key
}
