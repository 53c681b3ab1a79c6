package push

import (
	"strconv"
	"strings"
	"time"

	"github.com/skyswap/skyswap/agent/report"
)

// Line formats e as one logfmt line for a terminal or a script, elapsed
// being the time since the command was sent:
//
//	elapsed_ms=1520 phase=pulled bytes=2048 to=host:5000/flight:v2@sha256:...
//	elapsed_ms=9011 phase=result outcome=reverted from=... to=... epoch=3 error="..."
//
// Empty fields are left out; values with spaces, quotes or '=' are quoted.
func Line(e report.Event, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString("elapsed_ms=" + strconv.FormatInt(elapsed.Milliseconds(), 10))
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if strings.ContainsAny(v, " \t\n\"=\\") || !strconv.CanBackquote(v) {
			v = strconv.Quote(v)
		}
		b.WriteString(" " + k + "=" + v)
	}
	num := func(k string, n int64) {
		if n != 0 {
			kv(k, strconv.FormatInt(n, 10))
		}
	}
	kv("phase", e.Phase)
	kv("outcome", e.Outcome)
	num("bytes", e.Bytes)
	kv("from", e.From)
	kv("to", e.To)
	num("epoch", int64(e.Epoch))
	num("tick", e.Tick)
	kv("error", e.Error)
	return b.String()
}
