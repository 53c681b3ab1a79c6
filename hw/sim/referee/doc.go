// Package referee judges every flight-continuity claim made about the
// virtual drone. The simulator hands it every actuator write (who wrote, with
// which fencing epoch, whether the write changed the motor channels, whether
// the fence refused it) and a stream of flight-truth samples; the referee
// reports the motor-update gaps, double drive, writer switches, refused
// stale writes, attitude and altitude error, and whether the drone stayed in
// the air.
//
// # Time
//
// All times are int64 nanoseconds on CLOCK_MONOTONIC, supplied by the caller;
// the referee never reads a clock. Writes and samples should be recorded in
// roughly increasing time; reports sort what they use by time, so writes
// from racing goroutines that reach Record a little out of order are judged
// in the order they happened.
//
// # Motor updates and gaps
//
// A motor update is a write with Update set and Refused clear: it changed the
// motor channel registers and was applied. Refused writes (stale epoch, kept
// out by the fence) are counted separately and are never updates, so they
// neither fill nor split a gap. The gaps are the intervals between
// consecutive motor updates that both lie inside the report window.
//
// # Double drive
//
// The flight loop updates the motors once per tick (1/TickHz, 2.5 ms at
// 400 Hz). A correct handover means that from one tick to the next exactly
// one writer drives the motors. Double drive is two writers driving within
// the same tick: a motor update whose writer differs from the writer of the
// previous motor update, less than half a tick after it.
//
// Half a tick is the threshold because it splits "same tick" from "next
// tick" with the most margin on both sides: a clean handover puts the new
// writer's first update about one tick after the old writer's last, and
// scheduler jitter of up to half a tick either way still leaves it above the
// threshold, while two writers both active in one tick land well under it.
// A writer switch that comes later than half a tick is a clean switch and is
// only counted in WriterSwitches; every double drive is also a writer switch.
//
// # Take-backs
//
// A planned cut-over is announced at the lease: the old writer releases its
// epoch (a Write with Released set) before the new writer's first update.
// A writer switch without that release is a take-back: the new writer took
// the motors because it presumed the old one gone. A take-back is false
// when the old writer's last motor update came less than HolderTimeout
// (lease.HolderTimeout unless configured) before the new writer's first:
// the old writer was still driving, and only a late message, not a silent
// motor controller, could have made it look gone.
//
// # Camera
//
// The simulator also hands the referee every read of the thermal camera's
// video (which connection of which reader clocked which packets of which
// frame), the frames those reads delivered with the attitude their image
// shows, and the camera's configuration commands (a SET, or a RUN other than
// a ping). A frame is delivered to a reader when one connection of the
// reader read all of the frame's packets in order, none of them corrupted by
// fault injection. CameraReport gives, for a window, the frames and packets
// per reader, the longest gap between consecutive delivered frames of any
// reader, the corrupt packets read, and the configuration commands that came
// while the video was being read (a packet read less than StreamIdle
// before): a camera re-initialised under a streaming owner shows up there.
// The camera logs are rings too, of Config.CameraCap entries each; Report
// and its JSON are unchanged by them.
//
// # Concurrency and memory
//
// A Referee is safe for concurrent use. Record and Observe are O(1) and do
// not allocate (the camera's records are O(1) as well): writes and samples go into rings preallocated by New, which
// keep the most recent Config.LogCap writes and Config.SampleCap samples and
// overwrite the oldest. Report and Writes copy and sort the window, which
// costs time and memory proportional to its size; call them rarely.
package referee
