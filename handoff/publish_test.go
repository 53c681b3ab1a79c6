package handoff

import (
	"encoding/json"
	"testing"
	"time"
)

// TestPublishAllocatesNothing: once the outbox has warmed up, an owner's
// frame costs the control loop no allocation (a collection can hold a
// real-time thread up), and the frame it queued is the tick's, decodable.
func TestPublishAllocatesNothing(t *testing.T) {
	p := &Participant{cfg: ParticipantConfig{Schema: "s/1", Instance: "a", Version: "v1", Period: time.Millisecond},
		out: make(chan []byte, outboxFrames), free: make(chan []byte, outboxFrames+1), role: RoleOwner, epoch: 1}
	state, sample, out := json.RawMessage(`{"x":1.5,"mode":"hover"}`), json.RawMessage(`{"u":-2}`), []float64{0.5, 0.51, 0.49, 0.5}
	var tick int64
	publish := func() {
		tick++
		if err := p.Publish(tick, state, sample, out, Health{AltM: 2}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 * outboxFrames { // no sendLoop: the outbox fills, and the oldest frame's buffer is reused
		publish()
	}
	if n := testing.AllocsPerRun(500, publish); n != 0 {
		t.Errorf("Publish allocates %v times per frame, want none", n)
	}
	var last []byte
	for len(p.out) > 0 {
		last = <-p.out
	}
	f, err := DecodeFrame(last)
	if err != nil {
		t.Fatalf("the last frame queued does not decode: %v\n%s", err, last)
	}
	if f.Tick != tick || f.Seq != uint64(tick) || f.Instance != "a" || string(f.State) != string(state) || string(f.Sample) != string(sample) || f.Out[1] != 0.51 {
		t.Errorf("the last frame queued is %+v, want tick %d's", f, tick)
	}
}

// TestJSONBuffer: the bytes json.Marshal gives, without allocating once
// the buffer has grown.
func TestJSONBuffer(t *testing.T) {
	v := Frame{Schema: "s/1", Instance: "a<b>", Epoch: 3, Out: []float64{0.25, 1e-9}, State: json.RawMessage(`{ "x" : 1 }`), Sample: json.RawMessage(`[]`)}
	var j JSONBuffer
	got, err := j.Encode(&v)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(&v)
	if string(got) != string(want) {
		t.Errorf("Encode = %s, want json.Marshal's %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { j.Encode(&v) }); n != 0 {
		t.Errorf("Encode allocates %v times, want none", n)
	}
	if _, err := j.Encode(&Frame{State: json.RawMessage(`{`)}); err == nil {
		t.Error("Encode of invalid raw JSON succeeded")
	}
}
