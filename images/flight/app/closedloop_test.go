package app

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skyswap/skyswap/hw/sim"
	"github.com/skyswap/skyswap/hw/sim/physics"
)

func TestTuneExperiment(t *testing.T) {
	if os.Getenv("TUNE") == "" {
		t.Skip()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := sim.New(sim.Config{Physics: physics.Config{
		Gusts: physics.Gusts{Force: 0.5, Torque: 0.01, Seed: 1},
		Noise: physics.Noise{Gyro: 0.005, Accel: 0.05, Baro: 0.05, Seed: 2},
	}})
	go d.Run(ctx)
	sock := filepath.Join(t.TempDir(), "sim.sock")
	go d.Serve(ctx, sock)
	time.Sleep(50 * time.Millisecond)
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(fctx, Config{Bus: "sim:" + sock, Instance: "v1", HoverS: 4, LogEvery: 1}.withDefaults(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
	}()
	for i := 0; i < 16; i++ {
		time.Sleep(time.Second)
		tr := d.Truth()
		t.Logf("t=%d z=%.2f roll=%.2f pitch=%.2f yaw=%.1f motors=%.3v crashed=%v", i, tr.Pos[2], tr.RollDeg, tr.PitchDeg, tr.YawDeg, tr.Motors, tr.Crashed)
	}
	r := d.Report(d.Truth().HoverSince, 0)
	t.Logf("report %+v", r)
	fcancel()
	t.Logf("run: %v", <-done)
	tr := d.Truth()
	t.Logf("final z=%.2f crashed=%v airborne=%v", tr.Pos[2], tr.Crashed, tr.Airborne)
}
