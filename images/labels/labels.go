// Package labels names the labels of an app release: the image labels
// images/build writes, which containers carry as their own, and the
// instance label the agent adds to each container. The agent checks an
// update against them and reads a lost release back from them;
// skyswap-chaos selects containers by them. It imports nothing.
package labels

// DefaultApp is the app's name (the io.skyswap.app value) wherever none
// is given: the flight app, the one app a drone runs today.
const DefaultApp = "flight"

// Prefix starts every skyswap label.
const Prefix = "io.skyswap."

// The labels.
const (
	App          = Prefix + "app"           // the app the release is of (flight)
	Version      = Prefix + "version"       // its version (v1)
	Strategy     = Prefix + "strategy"      // the update strategy it declares (handoff/strategy)
	StateSchemas = Prefix + "state-schemas" // the state schema ids it accepts, comma separated
	Features     = Prefix + "features"      // its features, comma separated; absent when none
	Instance     = Prefix + "instance"      // a container's app instance (the agent's name for it)
)
