// Package rollout takes a release across many drones in waves, the way
// hawkBit rollouts, AWS IoT Jobs and Mender phased deployments do: the
// ground's Manager picks the targets (drone ids, all, or a label selector
// on what the drones report), splits them into waves of cumulative sizes
// (1,10%,50%,100%), sends each wave's drones a signed update
// (controller/push's Signer; one command per drone and kind, its id
// derived from the rollout and the drone, so a copy is refused by the
// drone as a replay), follows their events, and judges each wave against
// a failure threshold with a minimum sample (max_failed 5%, min_done 10,
// the shape of IoT Jobs' abort criteria). Over it, the rollout stops, or
// rolls back every drone it updated. An operator pauses, resumes and
// cancels it.
//
// # Outcomes of a drone
//
// A drone's command is done when its final event succeeds
// (push.Succeeded: committed or deployed), failed when it ends otherwise
// or the drone answered but reached no outcome within the timeout, and
// unreached when no answer came before the command expired: an offline
// drone's command waits in its persistent MQTT session until then, and a
// drone back in time updates like the others. Unreached drones are
// counted apart and do not count against max_failed. A drone whose state
// already shows the release committed is skipped (done, nothing sent).
//
// # Durability
//
// The Manager keeps each rollout's Record in its own file, every write an
// atomic replace. A command is recorded as sent (with its id and expiry)
// before it is published, and as published once the broker acknowledged
// it, so a ground killed at any instant and started again never signs a
// drone a second command for the same wave. A command recorded as sent
// and not as published may or may not have reached the broker: after
// settling (DefaultSettle, while what came during the outage is
// delivered), the Manager publishes again the ones no drone answered,
// signed with their first issue time so the bytes are the same. A drone
// that did get the first copy (it was offline, so its answer did not come
// either) refuses the second as a replay. The Manager follows the fleet on a persistent MQTT
// session (push.Config.Session) and acknowledges each event only once the
// record it changed is written, so events that came while the ground was
// down, or between its receiving and its writing, are delivered again.
//
// # Bad input
//
// An event of a rollout's command from another drone than the one it was
// sent to, or naming another drone than its topic; an event of a rollout
// the ground does not know; a state naming another drone than its topic;
// an event of a command that has ended: each is ignored and counted
// (Stats, Record.Ignored) and changes no drone's outcome.
package rollout
