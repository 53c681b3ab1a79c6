//go:build !skyswap_faults

package app

// faults is inert in production builds; see faults_on.go.
var faults noFaults

type noFaults struct{}

func (noFaults) replay(out [4]float64) [4]float64         { return out }
func (noFaults) drive(out [4]float64, _ Start) [4]float64 { return out }
