package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/skyswap/skyswap/hw/camera/thermal"
	"github.com/skyswap/skyswap/hw/sim/scene"
)

// checkCamera waits for camera frames from instance on MQTT and checks
// that each decodes as a thermal image whose horizon lies where the
// simulator's attitude for that frame puts it, and that the new owner
// attached to the streaming camera without reconfiguring it.
func (r *agentRig) checkCamera(ctx context.Context, instance string) {
	r.t.Helper()
	const want = 5
	checked := 0
	deadline := time.After(30 * time.Second)
	for checked < want {
		var payload []byte
		select {
		case m := <-r.camera:
			payload = m.Payload
		case <-deadline:
			r.t.Fatalf("%d of %d camera frames from %s within 30 s; its log:\n%s", checked, want, instance,
				readLog(r.t, r.cfg.LogDir, instance, false))
		}
		c, err := thermal.Comment(payload)
		if err != nil {
			r.t.Fatalf("camera frame without its metadata: %v", err)
		}
		var meta struct {
			Instance string `json:"instance"`
			Count    uint32 `json:"count"`
			T        int64  `json:"t"`
		}
		if err := json.Unmarshal(c, &meta); err != nil {
			r.t.Fatalf("camera metadata %q: %v", c, err)
		}
		if meta.Instance != instance {
			r.t.Fatalf("a camera frame from %s; only the owner %s reads the camera", meta.Instance, instance)
		}
		img, err := jpeg.Decode(bytes.NewReader(payload))
		if err != nil {
			r.t.Fatalf("camera frame %d is not a JPEG: %v", meta.Count, err)
		}
		if b := img.Bounds(); b.Dx() != 160 || b.Dy() != 120 {
			r.t.Fatalf("camera frame %d is %v, want 160x120", meta.Count, b)
		}
		angle, row, ok := thermal.Horizon(img)
		if !ok {
			f := filepath.Join(os.TempDir(), fmt.Sprintf("skyswap-frame-%d.jpg", meta.Count))
			os.WriteFile(f, payload, 0o644)
			r.t.Fatalf("no horizon in camera frame %d (saved as %s)", meta.Count, f)
		}
		frames, err := r.sim.CameraFrames(ctx, meta.T-int64(time.Second), meta.T+int64(time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		found := false
		for _, f := range frames {
			if f.Frame != meta.Count || f.Reader != instance {
				continue
			}
			found = true
			wantAngle, wantY := scene.Horizon(f.RollDeg, f.PitchDeg)
			gotY := row / thermal.Scale
			r.t.Logf("frame %d: horizon %.2f° at y %.2f; the attitude it shows (roll %.2f°, pitch %.2f°) puts it at %.2f°, y %.2f",
				meta.Count, angle, gotY, f.RollDeg, f.PitchDeg, wantAngle, wantY)
			if math.Abs(angle-wantAngle) > 1.2 || math.Abs(gotY-wantY) > 0.75 {
				r.t.Fatalf("frame %d: the horizon does not match the simulated attitude", meta.Count)
			}
		}
		if !found {
			r.t.Fatalf("the referee has no delivery of frame %d to %s", meta.Count, instance)
		}
		checked++
	}
	rep, err := r.sim.Camera(ctx, 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	if rep.ConfigWhileStreaming != 0 || rep.Readers[instance].Frames == 0 {
		r.t.Fatalf("camera: %d configuration commands while streaming (want 0: Attach does not reset), %d frames to %s",
			rep.ConfigWhileStreaming, rep.Readers[instance].Frames, instance)
	}
}
