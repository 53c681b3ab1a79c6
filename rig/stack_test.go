package rig

import (
	"os"
	"strings"
	"testing"

	"github.com/skyswap/skyswap/agent/containers"
)

// TestAppLogTail: the soak's log of an update that did not commit shows
// the end of each instance's log, and says why when there is none.
func TestAppLogTail(t *testing.T) {
	dir := t.TempDir()
	s := &Stack{logDir: dir}
	log := strings.Repeat("x", 100) + "the end\n"
	if err := os.WriteFile(containers.LogFile(dir, "flight-a"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id   string
		n    int64
		want string
	}{
		{"flight-a", 8, "the end\n"},
		{"flight-a", 1000, log},
		{"flight-b", 8, "no such file or directory"},
	}
	for _, tc := range cases {
		if got := s.AppLogTail(tc.id, tc.n); !strings.HasSuffix(got, tc.want) || int64(len(got)) > max(tc.n, 100) {
			t.Errorf("AppLogTail(%s, %d) = %q, want %q", tc.id, tc.n, got, tc.want)
		}
	}
}
