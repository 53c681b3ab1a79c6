package handoff

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/lease"
)

// TestPublishAllocatesNothing: once the outbox has warmed up, an owner's
// frame costs the control loop no allocation (a collection can hold a
// real-time thread up), and the frame it queued is the tick's, decodable.
func TestPublishAllocatesNothing(t *testing.T) {
	p := &Participant{cfg: ParticipantConfig{Schema: "s/1", Instance: "a", Version: "v1", Period: time.Millisecond},
		out: make(chan []byte, outboxFrames), free: make(chan []byte, outboxFrames+1), role: RoleOwner, epoch: 1}
	p.mirror()
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

// TestOwnerTicksWithoutTheLock: an owner with no hand-over due decides
// and publishes without the participant's lock, which ordinary threads
// hold (the NATS callbacks, the status goroutine) and a real-time loop
// must not wait for; the hand-over's tick still decides under it.
func TestOwnerTicksWithoutTheLock(t *testing.T) {
	p := &Participant{cfg: ParticipantConfig{Schema: "s/1", Instance: "a", Period: time.Millisecond},
		out: make(chan []byte, outboxFrames), free: make(chan []byte, outboxFrames+1),
		role: RoleOwner, epoch: 3, lease: nopLease{}, log: slog.New(slog.DiscardHandler), now: time.Now().UnixNano,
		notes: make(chan slog.Record, noteBacklog), kick: make(chan struct{}, 1)}
	p.mirror()
	decided := make(chan Decision, 1)
	tick := func(n int64) {
		go func() {
			d := p.Tick(n)
			if d.Write {
				p.Publish(n, json.RawMessage(`{}`), json.RawMessage(`{}`), []float64{0.5}, Health{})
			}
			decided <- d
		}()
	}
	p.mu.Lock() // an ordinary thread holds it
	for _, n := range []int64{10, 11} {
		tick(n)
		select {
		case d := <-decided:
			if !d.Write || d.Epoch != 3 || d.Hydrate != nil || d.Retire {
				t.Fatalf("tick %d: %+v, want a write at epoch 3", n, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tick %d waited for the lock", n)
		}
		if n == 10 { // a hand-over at tick 12 is accepted (under the lock)
			p.pending = &Handover{Tick: 12, To: "b", Epoch: 4, Fallback: 5}
			p.mirror()
		}
	}
	if f, err := DecodeFrame(<-p.out); err != nil || f.Handover != nil || f.Epoch != 3 {
		t.Fatalf("tick 10's frame: %+v, %v; want epoch 3, no hand-over", f, err)
	}

	tick(12)
	select {
	case d := <-decided:
		t.Fatalf("the hand-over's tick decided %+v without the lock", d)
	case <-time.After(50 * time.Millisecond):
	}
	p.mu.Unlock()
	if d := <-decided; d.Write || p.Role() != RoleStandby {
		t.Fatalf("the hand-over's tick: %+v, role %s; want no write, standby", d, p.Role())
	}
	queued := len(p.out)
	if err := p.Publish(13, json.RawMessage(`{}`), json.RawMessage(`{}`), []float64{0.5}, Health{}); err != nil || len(p.out) != queued {
		t.Fatalf("a standby's Publish: %v, %d frames queued, want none", err, len(p.out)-queued)
	}
}

type nopLease struct{}

func (nopLease) Beat() (lease.Beat, error) { return lease.Beat{}, nil }
func (nopLease) Release(uint64) error      { return nil }
