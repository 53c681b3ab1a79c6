package chaos

import (
	"encoding/json"
	"io"
	"sync"
)

// Event is one JSON line on the output: a fault touching one container,
// or saying why it touched none. The first fields are always there; the
// rest only where the fault has them.
type Event struct {
	T         string            `json:"t"`         // wall clock, RFC 3339 with nanoseconds, UTC
	MonoNs    int64             `json:"mono_ns"`   // CLOCK_MONOTONIC ns (hw/mono), the referee's clock
	Fault     Kind              `json:"fault"`     //
	Container string            `json:"container"` // the container's id; "" when none was touched
	Labels    map[string]string `json:"labels"`    // the container's labels; {} when none
	Pid       uint32            `json:"pid"`       // its task's host pid; 0 when none
	ForMs     int64             `json:"for_ms"`    // how long the fault lasts; 0 for sigkill
	OK        bool              `json:"ok"`        // the fault was injected (or, with Undo, undone)
	Error     string            `json:"error"`     // why not; "" when OK

	Spec string `json:"spec"` // the fault's -fault value
	N    int    `json:"n"`    // which firing of it, from 1
	// Undo marks the line of an undo that failed (a stopped task that
	// could not be continued, say); an undo that works prints nothing.
	Undo    bool    `json:"undo,omitempty"`
	DelayMs int64   `json:"delay_ms,omitempty"` // latency: hold time
	Conns   int     `json:"conns,omitempty"`    // latency: the instance's connections held
	CPUs    int     `json:"cpus,omitempty"`     // hog: busy processes
	HogPids []int   `json:"hog_pids,omitempty"` // hog: their pids
	Cgroup  string  `json:"cgroup,omitempty"`   // hog: the cgroup directory they joined
	Rate    float64 `json:"rate,omitempty"`     // i2c: share failed
	Addr    string  `json:"addr,omitempty"`     // i2c: the address, "0x68"; "" = every address
}

// emitter writes events, one JSON line each, whole lines only.
type emitter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newEmitter(w io.Writer) *emitter { return &emitter{enc: json.NewEncoder(w)} }

func (e *emitter) emit(ev Event) error {
	if ev.Labels == nil {
		ev.Labels = map[string]string{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.enc.Encode(ev)
}
