package containers

import (
	"context"
	"fmt"
	"syscall"
)

// Signal sends sig to the container's task, its init process (the app).
// It is for tools that inject faults (skyswap-chaos): SIGSTOP and SIGCONT
// pause and resume the app without containerd's freezer, so the task
// still reports running, as a stalled process on a busy machine does;
// SIGKILL kills it. No container, no task, or a task that has exited is
// ErrNotFound.
func (r *Runtime) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	ctx = r.ctx(ctx)
	t, err := r.task(ctx, id)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("%w: signal %s: no running container (list them with ctr -n %s tasks ls)", ErrNotFound, id, r.ns)
	}
	if err := t.Kill(ctx, sig); err != nil {
		return classify(err, "signal %s: %s", id, sig)
	}
	return nil
}
