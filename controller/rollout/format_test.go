package rollout

import (
	"strings"
	"testing"
	"time"
)

// TestPrinter: to a pipe, only the lines that changed are printed again;
// to a terminal, the block is redrawn in place.
func TestPrinter(t *testing.T) {
	b := newBench(t, Spec{Waves: Waves{{Count: 1}, {Percent: 100}}}, 3)
	b.step(0)
	var pipe, tty strings.Builder
	p, live := &Printer{W: &pipe}, &Printer{W: &tty, Live: true}
	show := func() {
		p.Print(*b.r.rec)
		live.Print(*b.r.rec)
	}
	show()
	show() // nothing changed
	b.commit("d01", kindUpdate)
	b.step(time.Second)
	show()
	got := strings.Split(strings.TrimSpace(pipe.String()), "\n")
	want := []string{
		"rollout=ro-test state=running image=" + imgV2 + " drones=3 waves=2",
		"wave=1/2 drones=1 done=0 failed=0 in_progress=1 unreached=0",
		"wave=1/2 drones=1 done=1 failed=0 in_progress=0 unreached=0",
		"wave=2/2 drones=2 done=0 failed=0 in_progress=2 unreached=0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("to a pipe:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := strings.Count(tty.String(), "\x1b[2F"); n != 2 {
		t.Errorf("to a terminal: %d redraws of two lines, want 2:\n%q", n, tty.String())
	}
	if !strings.HasSuffix(tty.String(), "\x1b[2F\x1b[2K"+want[0]+"\n\x1b[2K"+want[2]+"\n\x1b[2K"+want[3]+"\n") {
		t.Errorf("to a terminal, the last redraw (up the two lines drawn, then three):\n%q", tty.String())
	}
}
