// Package chaos is skyswap-chaos, a test tool: it injects faults into app
// containers chosen by their containerd labels (io.skyswap.app,
// io.skyswap.version, io.skyswap.instance), on a schedule, to show that a
// hand-over succeeds on a drone that is not at its best. It is the seed
// demo's Entropy made for a drone. Nothing in the product depends on it;
// never run it on a drone that carries anything but a test.
//
// The faults (Kind):
//
//	sigstop  stop the app's task (SIGSTOP) for a while, then SIGCONT
//	sigkill  kill the app's task (SIGKILL)
//	hog      busy-looping processes in the container's CPU cgroup
//	latency  hold the instance's on-board NATS traffic, both ways, on a
//	         Relay that the instance reaches NATS through
//	i2c      a burst of I2C errors on the instance's bus transactions, in
//	         the virtual drone (hw/sim's POST /faults/i2c)
//
// Each fault fires after a first delay and then every period, a number of
// times or until stopped (Fault). Every firing writes one JSON line per
// container it touched (Event), or one saying why it touched nothing, and
// is undone when it ends or when Run returns: a stopped task is continued,
// a hog killed, a latency lifted, a burst ended.
//
// The relay is needed because the containers share the host's network and
// this kernel has neither netem nor a packet filter: instead the instances
// connect to NATS through the relay (drone-agent's AGENT_APP_NATS_URL), and
// the relay tells connections apart by the name each gives in its NATS
// CONNECT (the flight app's is its instance id, the container's id).
package chaos
