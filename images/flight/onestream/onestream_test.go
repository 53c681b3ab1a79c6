package onestream

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// TestStderrJoinsStdout runs this test binary again as a child that writes
// to stderr and exits at once: what it wrote comes out on its stdout, and
// nothing on its stderr.
func TestStderrJoinsStdout(t *testing.T) {
	if os.Getenv("ONESTREAM_CHILD") != "" {
		os.Stderr.WriteString("last words\n")
		os.Exit(3)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestStderrJoinsStdout$")
	cmd.Env = append(os.Environ(), "ONESTREAM_CHILD=1")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit code 3", err)
	}
	if stdout.String() != "last words\n" || stderr.Len() != 0 {
		t.Fatalf("child's stdout %q, stderr %q; want its last words on stdout only", stdout.String(), stderr.String())
	}
}
