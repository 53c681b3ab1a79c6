// Package physics simulates the quadcopter's rigid body, its ESCs and motors,
// gravity, drag, gusts and ground contact.
package physics
