// Package broker is the drone agent's MQTT link to the fleet broker
// (Mosquitto, EMQX, the NATS server's MQTT listener): the commands it
// receives and the state, events, telemetry and camera frames it reports.
// It is an adapter over github.com/eclipse/paho.mqtt.golang; no paho type
// appears in its API. The agent owns the small interface it needs;
// *Client is the implementation and brokertest.Fake the stand-in for tests.
//
// # Topics (DESIGN.md, "MQTT contract")
//
//	fleet/<drone>/cmd        QoS 1  ground -> drone; Connect subscribes
//	fleet/<drone>/state      QoS 1  retained; the last will is the offline state
//	fleet/<drone>/events     QoS 1
//	fleet/<drone>/telemetry  QoS 0
//	fleet/<drone>/camera     QoS 0
//
// # Online and offline
//
// The client connects with a last will on fleet/<drone>/state (retained,
// QoS 1, Config.WillPayload, by default {"drone":"<id>","online":false}),
// so the broker marks the drone offline when the link dies without a
// goodbye. On every connection, the first and each reconnect, it
// subscribes to the command topic, waits for the broker's SUBACK and only
// then publishes the current state retained: the last payload given to
// PublishState, or Config.OnlinePayload before the first one. So a ground
// station that sees "online" can send a command and know it will be
// delivered, and a will published during an outage is overwritten by the
// full current state, not by a bare "online". Close publishes the offline
// payload itself, then sends DISCONNECT, so the will is not needed.
//
// # Session and redelivery
//
// The client asks for a persistent session (clean session false) under a
// stable client id (skyswap-agent-<drone>) and also re-subscribes on every
// connection. The persistent session is what a flying drone needs: a
// command sent while the drone is out of range is queued by the broker and
// delivered when it comes back, instead of being lost. Re-subscribing
// covers the cases where the broker has no session for us (a broker
// restarted without persistence, a session expired, a broker that does not
// keep sessions), at the cost of one SUBACK per connection.
//
// Commands are acknowledged (PUBACK) only after onCommand returns. A
// command received just before a crash or a Close is therefore delivered
// again on the next connection of this drone, and QoS 1 may repeat a
// command anyway: onCommand must be idempotent per command id, which the
// agent's replay list (agent/command.Seen) provides.
//
// # Reconnects
//
// A lost connection is retried at once, then after 1 s, 2 s, 4 s... up to
// 10 s between attempts, for as long as the Client is open. While the link
// is down, events wait and are sent in order when it returns; states wait
// too, but only the newest is sent; QoS 0 messages are dropped and
// counted. Callers wait for their acknowledgement at most until their ctx
// ends.
//
// # The broker's side
//
// brokertest writes the reference per-drone ACL: a drone's user (its id)
// reads fleet/<id>/cmd and writes fleet/<id>/#. Mosquitto 2.0 grants a
// SUBSCRIBE its ACL denies and then delivers nothing, and acknowledges a
// PUBLISH it drops, so an ACL mistake shows as silence, not as an error.
// For commands to outlive an outage or a broker restart, the broker must
// keep sessions long enough (Mosquitto: persistent_client_expiration) and
// persist them (persistence true).
package broker
