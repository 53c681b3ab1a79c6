package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGroundFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"page on every interface without a token", []string{"ground", "-listen", "0.0.0.0:0"}, 1, "give a token"},
		{"TLS certificate without its key", []string{"ground", "-tls-cert", "c.pem"}, 1, "both the TLS certificate and its key"},
		{"bad listen address", []string{"ground", "-listen", "nowhere"}, 1, "give host:port"},
		{"stray argument", []string{"ground", "now"}, 2, `unexpected argument "now"`},
		{"help", []string{"ground", "-h"}, 0, "-mqtt-listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := dronectlEnv(t, time.Now, map[string]string{"DRONECTL_GROUND_DATA": dir}, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, errOut, tc.code, tc.msg)
			}
		})
	}
}

// TestGround runs the ground station until its context ends: it serves
// the page, logs JSON on stdout and exits 0.
func TestGround(t *testing.T) {
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"ground", "-listen", "127.0.0.1:0", "-mqtt-listen", "127.0.0.1:0", "-registry-listen", "127.0.0.1:0",
			"-data", t.TempDir()}, sys{stdout: &out, stderr: &errOut, now: time.Now, getenv: func(string) string { return "" }})
	}()
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)
	deadline := time.Now().Add(30 * time.Second)
	for url.FindString(errOut.String()) == "" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no URL on stderr within 30 s: %s\n%s", errOut.String(), out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := http.Get(url.FindString(errOut.String()) + "healthz")
	if err != nil || res.StatusCode != 200 {
		t.Errorf("healthz: %v %v", res, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"msg":"ground ready"`) {
		t.Errorf("stdout has no JSON ready line:\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
