package netdelay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink collects what Copy writes and signals each write.
type sink struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
	fail  error // every write fails with it, when set
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1<<16)} }

func (s *sink) Write(p []byte) (int, error) {
	if s.fail != nil {
		return 0, s.fail
	}
	s.mu.Lock()
	s.b.Write(p)
	s.mu.Unlock()
	s.wrote <- struct{}{}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHeldUntilLowered: with a delay no test outlives nothing leaves;
// lowering it releases everything held, in order, and later bytes pass.
func TestHeldUntilLowered(t *testing.T) {
	var d atomic.Int64
	d.Store(int64(time.Hour))
	pr, pw := io.Pipe()
	dst := newSink()
	done := make(chan error, 1)
	go func() { done <- Copy(dst, pr, func() time.Duration { return time.Duration(d.Load()) }) }()

	var want bytes.Buffer
	for i := range 50 {
		fmt.Fprintf(&want, "msg %d\n", i)
		fmt.Fprintf(pw, "msg %d\n", i)
	}
	select {
	case <-dst.wrote:
		t.Fatalf("bytes left under a 1 h delay: %q", dst.String())
	case <-time.After(200 * time.Millisecond):
	}
	d.Store(0)
	deadline := time.After(10 * time.Second)
	for dst.String() != want.String() {
		select {
		case <-dst.wrote:
		case <-deadline:
			t.Fatalf("after lowering the delay got %q, want %q", dst.String(), want.String())
		}
	}
	fmt.Fprintf(pw, "after\n")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("Copy = %v, want nil at EOF", err)
	}
	if got := dst.String(); got != want.String()+"after\n" {
		t.Fatalf("got %q, want the held bytes then %q", got, "after\n")
	}
}

// TestDelayHoldsAtLeast: every chunk waits at least the delay since it
// was read (a lower bound only: a loaded machine may add to it).
func TestDelayHoldsAtLeast(t *testing.T) {
	const delay = 50 * time.Millisecond
	pr, pw := io.Pipe()
	dst := newSink()
	done := make(chan error, 1)
	go func() { done <- Copy(dst, pr, func() time.Duration { return delay }) }()
	for i := range 5 {
		start := time.Now()
		fmt.Fprintf(pw, "%d", i)
		select {
		case <-dst.wrote:
		case <-time.After(10 * time.Second):
			t.Fatal("nothing left within 10 s")
		}
		if took := time.Since(start); took < delay {
			t.Fatalf("chunk %d left after %v, under the %v delay", i, took, delay)
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWriteErrorDrains: a failing destination ends Copy with its error
// once the source ends, and the reader is never stuck on a full queue.
func TestWriteErrorDrains(t *testing.T) {
	broken := errors.New("peer gone")
	dst := newSink()
	dst.fail = broken
	src := bytes.NewReader(bytes.Repeat([]byte("x"), 4<<20))
	if err := Copy(dst, smallReads{src}, func() time.Duration { return 0 }); !errors.Is(err, broken) {
		t.Fatalf("Copy = %v, want the write error", err)
	}
}

// smallReads reads in small chunks so the queue would fill if
// nothing drained it.
type smallReads struct{ r io.Reader }

func (r smallReads) Read(p []byte) (int, error) { return r.r.Read(p[:min(len(p), 64)]) }

func TestReadErrorReturned(t *testing.T) {
	pr, pw := io.Pipe()
	cut := errors.New("connection reset")
	go func() {
		pw.Write([]byte("partial"))
		pw.CloseWithError(cut)
	}()
	dst := newSink()
	if err := Copy(dst, pr, func() time.Duration { return 0 }); !errors.Is(err, cut) {
		t.Fatalf("Copy = %v, want the read error", err)
	}
	if dst.String() != "partial" {
		t.Fatalf("got %q, want what came before the error", dst.String())
	}
}
