package containers

import "path/filepath"

// LogFile is the file in dir that container id's stdout and stderr go to.
// containerd's shim writes it, so it keeps growing while the agent
// restarts. The shim copies both streams into it with a race: the stdout
// copier, at its end of file, closes the file under the stderr copier, so
// what a process writes to stderr as it exits can be lost. An app that
// must not lose its last words (a crash, a Go panic) writes everything to
// stdout, as the flight app does (images/flight/onestream).
func LogFile(dir, id string) string { return filepath.Join(dir, id+".log") }
