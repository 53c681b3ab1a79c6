package coordinator_test

import (
	"os"
	"runtime"
	"testing"
)

// TestMain gives the in-process tests the scheduling the real system has.
// There, the NATS server, the owner, the candidate and the coordinator are
// separate processes, each with its own Go scheduler; here they share one,
// and with GOMAXPROCS at the core count (2 on the target machine) a busy
// NATS goroutine can hold a control loop's wake-up in Go's run queue for
// several ticks. More Ps than cores hands that scheduling to the kernel, as
// separate processes would. An explicit GOMAXPROCS is respected.
func TestMain(m *testing.M) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(8, runtime.NumCPU()))
	}
	os.Exit(m.Run())
}
