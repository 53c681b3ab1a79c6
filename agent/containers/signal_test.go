package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procState is the state letter of /proc/<pid>/stat (R, S, T, Z...).
func procState(pid uint32) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) S ...: comm may hold spaces, so look after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("malformed /proc/%d/stat: %q", pid, b)
	}
	return b[i+2], nil
}

// waitState waits up to 10 s for the process state to satisfy ok.
func waitState(t *testing.T, pid uint32, what string, ok func(byte) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := procState(pid)
		if err != nil {
			t.Fatal(err)
		}
		if ok(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d in state %c after 10 s, want %s", pid, s, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSignal(t *testing.T) {
	r := openTest(t)
	ctx := context.Background()
	ref := pulled(t, r)
	id := "signal-" + nonce()
	t.Cleanup(func() { r.Remove(ctx, id) })
	if err := r.Start(ctx, Spec{ID: id, Image: ref}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, id, "ready")
	st, err := r.Inspect(ctx, id)
	if err != nil || st.Pid == 0 {
		t.Fatalf("Inspect = %+v, %v", st, err)
	}

	if err := r.Signal(ctx, id, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState(t, st.Pid, "T (stopped)", func(s byte) bool { return s == 'T' })
	if err := r.Signal(ctx, id, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitState(t, st.Pid, "running or sleeping", func(s byte) bool { return s != 'T' })

	exited, err := r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Signal(ctx, id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-exited:
		if e.Code != 128+uint32(syscall.SIGKILL) {
			t.Errorf("exit %+v, want 137 (SIGKILL)", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGKILL")
	}
	if err := r.Signal(ctx, id, syscall.SIGCONT); !errors.Is(err, ErrNotFound) {
		t.Errorf("Signal to an exited task = %v, want ErrNotFound", err)
	}
	if err := r.Signal(ctx, "absent-"+nonce(), syscall.SIGSTOP); !errors.Is(err, ErrNotFound) {
		t.Errorf("Signal to no container = %v, want ErrNotFound", err)
	}
}
