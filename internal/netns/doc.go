// Package netns builds throwaway Linux network namespaces for dataplane tests.
//
// A test creates namespaces, joins them with veth pairs or a bridge, gives links
// IPv4 and IPv6 addresses, routes and forwarding, then runs real iptables, ipset
// and conntrack commands inside them and pushes real TCP and UDP packets through
// them with an in-process echo server and a probe client. Deleting a namespace
// removes everything the test put in it, including its links, rules and sets, so
// nothing on the host changes and parallel test binaries never see each other.
//
// Everything here needs root and the tools Require checks for. Only addresses
// inside namespaces the caller created, or loopback, ever receive traffic; use
// private ranges such as 10.0.0.0/8 and fd00::/8 inside them.
//
// It serves the dataplane test tier of the design: netpol and servicelb
// tests use it to assert with real packets that traffic is allowed or blocked.
package netns
