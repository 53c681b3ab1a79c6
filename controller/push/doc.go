// Package push is the ground side of an update: it resolves an image tag to
// its digest, signs a command (agent/command), publishes it on
// fleet/<drone>/cmd and follows the drone's reports (agent/report) on
// fleet/<drone>/events until the command's final event. dronectl push,
// rollback and status are thin wrappers; the demo and the bench call it
// directly.
//
// # One command, from the ground
//
//	ref, err := push.Resolve(ctx, "flight:v2", "registry.local:5000", false)
//	res, err := push.Run(ctx, push.Config{Broker: "tcp://broker:1883", Drone: "d1", Key: priv},
//		push.Request{Kind: command.KindUpdate, Image: ref})
//
// Run connects with a clean session, subscribes to the drone's events and
// state (QoS 1) and only then publishes the command (QoS 1, not retained), so
// no event of the command can come before the subscription. It keeps the
// events whose command id is the command's, in arrival order, and returns
// at the first final one (report.Event.Final, or a "recovered" event for
// this command: the agent restarted and settled it). A final event that is
// not a success is an *OutcomeError (ErrFailed) carrying the agent's
// reason; no final event within Config.Timeout is ErrTimeout. Neither means
// the drone did nothing: the command may still be running, or queued.
//
// # Offline drones
//
// The drone's agent keeps a persistent MQTT session, so the broker queues a
// command sent while the drone is out of reach and delivers it when it
// comes back, until the command expires (Config.TTL): Run warns (Config.Log)
// when the retained state says the drone is offline, and still sends.
//
// # Registries
//
// Resolve asks the registry for the manifest a tag names (HEAD, then GET),
// with the credentials of the default keychain (~/.docker/config.json), over
// HTTPS except for loopback and private addresses, which go-containerregistry
// tries over plain HTTP too; plainHTTP forces plain HTTP. How the drone
// reaches the registry is the drone's own setting (AGENT_PLAIN_HTTP).
package push
