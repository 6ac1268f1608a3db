// Package netpoltest holds the upstream Kubernetes e2e NetworkPolicy model (namespaces x, y, z
// with pods a, b, c serving ports 80 and 81 over TCP, UDP and SCTP under the container port
// names serve-<port>-<proto>), builders for its objects and policies, and the upstream e2e
// cases (test/e2e/network/netpol) as data: each case is the objects and policies of one step
// and the whole reachability matrix one probe must give.
//
// The cases are shared by every test that replays them: netpol's evaluator and dataplane
// tests on network namespaces, and the real-node tests of examples/k3slike, whose pods run on
// real nodes. The package imports no part of netpol, so netpol's own tests can use it.
package netpoltest
