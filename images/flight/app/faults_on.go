//go:build skyswap_faults

package app

import (
	"fmt"
	"os"
	"time"
)

// faults injects deliberate misbehaviour in test builds (go build -tags
// skyswap_faults), chosen by FLIGHT_FAULT or, when that is unset, by the
// fault stamped into the build (-ldflags "-X <this package>.fault=crash"):
// a stamped image carries its fault whatever environment the agent gives
// every instance.
//
//	nosync   the shadow replay is off by 0.1: the candidate never syncs
//	diverge  after taking over from another instance, motor 0 is driven
//	         0.06 above the control law: the standby sees divergence
//	crash    exit 1 at start, before the bus is opened
//	exit     after taking over from another instance, fly exitAfter, then
//	         exit 1 without landing (the process dies in probation)
//
// Any other value is refused at start (exit 2), so a misspelt stamp does
// not pass for a working image.
var faults = newFaults(os.Getenv("FLIGHT_FAULT"), fault)

// fault is the build's default fault, set by the linker; "" = none.
var fault string

// exitAfter is how long the exit fault drives the motors before dying.
const exitAfter = 500 * time.Millisecond

func init() {
	switch faults.name {
	case "", "nosync", "diverge", "exit":
	case "crash":
		fmt.Fprintln(os.Stderr, "flight: fault crash: exiting at start")
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "flight: unknown fault %q: use nosync, diverge, crash or exit\n", faults.name)
		os.Exit(2)
	}
}

// faultSwitch is the fault in force. Its methods run on the control loop's
// thread only.
type faultSwitch struct {
	name string
	took time.Time // when this candidate first drove the motors (exit)
}

func newFaults(env, stamped string) *faultSwitch {
	if env == "" {
		env = stamped
	}
	return &faultSwitch{name: env}
}

func (f *faultSwitch) replay(out [4]float64) [4]float64 {
	if f.name == "nosync" {
		for i := range out {
			out[i] += 0.1
		}
	}
	return out
}

// drive is called when this instance is about to write out to the motors.
func (f *faultSwitch) drive(out [4]float64, start Start) [4]float64 {
	if start != StartCandidate {
		return out
	}
	switch f.name {
	case "diverge":
		out[0] += 0.06
	case "exit":
		if f.took.IsZero() {
			f.took = time.Now()
		} else if time.Since(f.took) >= exitAfter {
			fmt.Fprintf(os.Stderr, "flight: fault exit: exiting %v after taking over, without landing\n", exitAfter)
			os.Exit(1)
		}
	}
	return out
}
