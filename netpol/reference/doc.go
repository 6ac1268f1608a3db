// Package reference is the reference semantics of Kubernetes NetworkPolicy: Evaluate says
// whether one connection is allowed and why (the reason and the rule of each direction), and
// Reachability prints the truth table upstream's NetworkPolicy e2e tests print.
//
// It is the oracle netpol's dataplane tests compare real packets with, written field by field
// from the Kubernetes API documentation. It is a package of its own, importing nothing of
// netpol, so that it shares no code with netpol.Compile: a bug in shared code would pass both
// sides of every test.
package reference
