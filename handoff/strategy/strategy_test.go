package strategy

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, s := range All {
		if err := Check(string(s)); err != nil {
			t.Errorf("Check(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "yolo", "Handoff"} {
		err := Check(s)
		if err == nil || !strings.Contains(err.Error(), "use handoff, stop-start, start-then-stop") {
			t.Errorf("Check(%q) = %v, want an error listing the strategies", s, err)
		}
	}
}
