package netns_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

func TestVethPeersReachEachOther(t *testing.T) {
	t.Parallel()
	p := newVethPair(t)
	tests := []struct {
		name  string
		proto netns.Proto
		dst   netip.Addr
	}{
		{name: "tcp over ipv4 is echoed", proto: netns.TCP, dst: p.serverV4},
		{name: "tcp over ipv6 is echoed", proto: netns.TCP, dst: p.serverV6},
		{name: "udp over ipv4 is echoed", proto: netns.UDP, dst: p.serverV4},
		{name: "udp over ipv6 is echoed", proto: netns.UDP, dst: p.serverV6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, p.server, tt.proto)
			require.NoError(t, p.client.Probe(tt.proto, netip.AddrPortFrom(tt.dst, srv.Port()), allowed))
		})
	}
}

func TestUDPEchoToASecondaryAddressComesBackFromIt(t *testing.T) {
	t.Parallel()
	p := newVethPair(t)
	// Replies from a wildcard socket would leave from the primary address, and
	// the probe's connected socket would drop them, without packet info.
	addAddrs(t, p.server.Link("eth0"), "10.0.0.3/24", "fd00::3/64")
	srv := serve(t, p.server, netns.UDP)
	for _, dst := range []string{"10.0.0.3", "fd00::3"} {
		t.Run(dst, func(t *testing.T) {
			addr := netip.AddrPortFrom(netip.MustParseAddr(dst), srv.Port())
			require.NoError(t, p.client.Probe(netns.UDP, addr, allowed))
		})
	}
}

func TestLoopbackInsideANamespaceIsUp(t *testing.T) {
	t.Parallel()
	ns := netns.NewT(t, "lo")
	for _, proto := range []netns.Proto{netns.TCP, netns.UDP} {
		srv := serve(t, ns, proto)
		for _, dst := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
			require.NoError(t, ns.Probe(proto, netip.AddrPortFrom(dst, srv.Port()), allowed), "%s to %s", proto, dst)
		}
	}
}
