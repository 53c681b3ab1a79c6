// Package referee logs every actuator write on the virtual drone with its
// writer and epoch and reports flight-continuity figures: motor-update gaps,
// double drive, refused stale writes, attitude and altitude error.
package referee
