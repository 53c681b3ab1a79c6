// Package handoff hands a running control loop from one process to another
// over NATS, at a control-tick boundary, without a missed or doubled tick.
// This package is the protocol (frames, statuses, control messages, the
// subjects and the frame stream) and the Participant a control loop embeds;
// it is what the flight app links. The other side is package
// handoff/coordinator, which the agent runs; handoff/onboard is the
// embedded NATS server they meet on; handoff/strategy names the ways an
// update may go.
//
// Names: the owner holds the hardware lease and drives the actuators; a
// candidate is the new instance; after cut-over the old owner is the
// standby. Epochs only grow; the fence in hw/lease refuses stale writers.
//
// Subjects, for an app named A (e.g. "flight"):
//
//	skyswap.A.frames           state frames from the owner, one per tick;
//	                           captured by the JetStream stream SKYSWAP_A
//	                           (memory, the last few seconds) so that a late
//	                           candidate hydrates from the newest one
//	skyswap.A.status.<inst>    each participant's status, ~20 Hz
//	skyswap.A.ctl.<inst>       requests to one participant (expect, handover, retire)
//	skyswap.A.events           the coordinator's phase changes
//
// The protocol:
//
//  1. prepare: the coordinator starts the candidate (its Runtime.Start). It
//     attaches the hardware read-only and follows the frames.
//  2. shadow: for every pair of consecutive frames k-1, k the candidate
//     replays its own control law from frame k-1's state on frame k's sensor
//     sample and compares with the outputs the owner wrote at k. K ticks in a
//     row within tolerance, fresh and without a sequence gap, is "synced".
//  3. cut-over: the coordinator tells the candidate to expect a hand-over
//     at tick T (a lead ahead) with epoch E+1 from epoch E, and once it has
//     answered asks the owner to hand over so. The owner stamps its frames with the
//     hand-over, writes ticks < T, and releases epoch E at the lease right
//     after its last write. The candidate, at tick T or later, takes over
//     once the lease shows E released (or the owner silent for the holder
//     timeout), from the stamped frame T-1 if it arrives within a
//     millisecond, else from its own caught-up state. The lease, not the
//     frames, is the commitment: the fence admits E+1 only from a holder
//     that released or fell silent.
//  4. probation: the new owner publishes frames; the standby shadows it. If
//     the new owner's writes stop at the lease for the holder timeout the
//     standby takes back on its own at the fallback epoch E+2, which fences
//     the old candidate out; a late frame alone never triggers it. If the
//     coordinator judges the probation unhealthy it hands back the same
//     way as step 3, and stops the candidate only once the lease shows the
//     standby driving.
//  5. commit: the coordinator retires the standby, which exits (it holds no
//     lease), and stops it.
//
// Every message is JSON; malformed ones are counted and ignored.
package handoff
