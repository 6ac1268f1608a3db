package main

import (
	"net"
	"net/netip"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// defaultNodeIP is the node IP when --node-ip is absent, chosen as K3s chooses it: the address
// of the interface of the default route (IPv4 first, then IPv6), else loopback on a host
// without one.
func defaultNodeIP() netip.Addr { return nodeIPFrom(utilnet.ChooseHostInterface) }

// nodeIPFrom is defaultNodeIP over a host interface chooser, so the fallback can be tested.
func nodeIPFrom(choose func() (net.IP, error)) netip.Addr {
	if ip, err := choose(); err == nil {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().IsGlobalUnicast() {
			return a.Unmap()
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
