package rollout

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Lines are a rollout's progress as logfmt lines, for a terminal or a
// script: one for the rollout, then one per wave that has started:
//
//	rollout=ro-1a2b3c4d state=running image=host:5000/flight:v2@sha256:... drones=20 waves=4
//	wave=1/4 drones=1 done=1 failed=0 in_progress=0 unreached=0
//	wave=2/4 drones=1 done=0 failed=0 in_progress=1 unreached=0
//
// A wave adds pending=N while it has drones not sent yet, soak_until=T
// while it soaks, rolled_back=N and rollback_failed=N after a rollback;
// the rollout line adds reason="..." when it has one.
func Lines(rec Record) []string {
	head := fmt.Sprintf("rollout=%s state=%s image=%s drones=%d waves=%d", rec.ID, rec.State, rec.Spec.Image, len(rec.Drones), len(rec.Waves))
	if rec.Reason != "" {
		head += " reason=" + quote(rec.Reason)
	}
	out := []string{head}
	for i, w := range rec.Waves {
		if w.Started.IsZero() {
			continue
		}
		c := rec.Counts(i)
		line := fmt.Sprintf("wave=%d/%d drones=%d done=%d failed=%d in_progress=%d unreached=%d",
			i+1, len(rec.Waves), c.Drones, c.Done, c.Failed, c.InProgress, c.Unreached)
		if c.Pending > 0 {
			line += fmt.Sprintf(" pending=%d", c.Pending)
		}
		if !w.SoakUntil.IsZero() && i == rec.Wave {
			line += " soak_until=" + w.SoakUntil.UTC().Format(time.RFC3339)
		}
		if c.RolledBack+c.RollbackFailed > 0 {
			line += fmt.Sprintf(" rolled_back=%d rollback_failed=%d", c.RolledBack, c.RollbackFailed)
		}
		out = append(out, line)
	}
	return out
}

func quote(s string) string {
	if strings.ContainsAny(s, " \t\"=\\") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// Printer writes a rollout's progress as it changes. With Live (an ANSI
// terminal) it redraws its lines in place; without, it prints each line
// that changed, so a log or a pipe gets every step once.
type Printer struct {
	W    io.Writer
	Live bool

	last []string
}

// Print shows rec's progress.
func (p *Printer) Print(rec Record) {
	lines := Lines(rec)
	if p.Live {
		if len(p.last) > 0 {
			fmt.Fprintf(p.W, "\x1b[%dF", len(p.last)) // to the start of the first line drawn
		}
		for _, l := range lines {
			fmt.Fprintf(p.W, "\x1b[2K%s\n", l)
		}
		p.last = lines
		return
	}
	for i, l := range lines {
		if i >= len(p.last) || p.last[i] != l {
			fmt.Fprintln(p.W, l)
		}
	}
	p.last = lines
}

// Succeeded reports whether rec completed with every target updated
// (done or skipped).
func (rec Record) Succeeded() bool {
	c := rec.Counts(-1)
	return rec.State == Completed && c.Done == c.Drones
}
