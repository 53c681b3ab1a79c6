package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyswap/skyswap/handoff"
)

var updateGolden = flag.Bool("update-golden", false, "fly v1 and record its state frames into app/testdata")

// TestRecordV1Frames records two consecutive state frames emitted by a real
// flight v1 in hover into app/testdata/frames_v1.json (with
// -update-golden). The app package's contract test replays them with the
// current code: a new version is tested against what v1 really sent.
func TestRecordV1Frames(t *testing.T) {
	if !*updateGolden {
		t.Skip("run with -update-golden to record v1's frames (the contract test in package app uses the recorded file)")
	}
	f := newFleet(t, "SIM_NOISE=1", "SIM_GUST_N=0.3")
	time.Sleep(time.Second) // in hover, away from the take-off
	nc, err := nats.Connect(f.NATS.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(handoff.SubjectsFor("flight").Frames(), ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var prev *handoff.Frame
	var prevRaw []byte
	for {
		select {
		case <-ctx.Done():
			t.Fatal("no two consecutive frames within 5 s")
		case m := <-ch:
			fr, err := handoff.DecodeFrame(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if prev != nil && fr.Seq == prev.Seq+1 && fr.Sample != nil {
				out, _ := json.MarshalIndent([]json.RawMessage{prevRaw, m.Data}, "", "  ")
				path := filepath.Join("app", "testdata", "frames_v1.json")
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("recorded frames %d and %d to %s", prev.Seq, fr.Seq, path)
				return
			}
			prev, prevRaw = fr, m.Data
		}
	}
}
