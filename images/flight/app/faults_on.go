//go:build skyswap_faults

package app

import "os"

// faults injects deliberate misbehaviour in test builds (go build -tags
// skyswap_faults), chosen by FLIGHT_FAULT:
//
//	nosync   the shadow replay is off by 0.1: the candidate never syncs
//	diverge  after taking over from another instance, motor 0 is driven
//	         0.06 above the control law: the standby sees divergence
var faults = fault(os.Getenv("FLIGHT_FAULT"))

type fault string

func (f fault) replay(out [4]float64) [4]float64 {
	if f == "nosync" {
		for i := range out {
			out[i] += 0.1
		}
	}
	return out
}

func (f fault) drive(out [4]float64, start Start) [4]float64 {
	if f == "diverge" && start == StartCandidate {
		out[0] += 0.06
	}
	return out
}
