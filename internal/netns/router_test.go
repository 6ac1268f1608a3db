package netns_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

func TestARouterNamespaceForwardsBetweenClientAndServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	client, router, server := netns.NewT(t, "client"), netns.NewT(t, "router"), netns.NewT(t, "server")

	cEth, rLeft, err := client.AddVeth(ctx, "eth0", router, "left")
	require.NoError(t, err)
	sEth, rRight, err := server.AddVeth(ctx, "eth0", router, "right")
	require.NoError(t, err)
	addAddrs(t, cEth, "10.1.0.2/24", "fd00:1::2/64")
	addAddrs(t, rLeft, "10.1.0.1/24", "fd00:1::1/64")
	addAddrs(t, rRight, "10.2.0.1/24", "fd00:2::1/64")
	addAddrs(t, sEth, "10.2.0.2/24", "fd00:2::2/64")
	for _, r := range []struct {
		ns  *netns.Namespace
		via string
	}{
		{client, "10.1.0.1"}, {client, "fd00:1::1"},
		{server, "10.2.0.1"}, {server, "fd00:2::1"},
	} {
		require.NoError(t, r.ns.AddDefaultRoute(ctx, netip.MustParseAddr(r.via)))
	}

	tcp, udp := serve(t, server, netns.TCP), serve(t, server, netns.UDP)
	tests := []struct {
		name  string
		proto netns.Proto
		port  uint16
		dst   string
	}{
		{name: "tcp over ipv4 crosses the router", proto: netns.TCP, port: tcp.Port(), dst: "10.2.0.2"},
		{name: "tcp over ipv6 crosses the router", proto: netns.TCP, port: tcp.Port(), dst: "fd00:2::2"},
		{name: "udp over ipv4 crosses the router", proto: netns.UDP, port: udp.Port(), dst: "10.2.0.2"},
		{name: "udp over ipv6 crosses the router", proto: netns.UDP, port: udp.Port(), dst: "fd00:2::2"},
	}

	// A fresh namespace does not forward, so the router must be what makes the
	// difference.
	t.Run("nothing crosses before forwarding is enabled", func(t *testing.T) {
		for _, tt := range tests {
			err := client.Probe(tt.proto, netip.AddrPortFrom(netip.MustParseAddr(tt.dst), tt.port), blocked)
			assert.True(t, netns.IsBlocked(err), "%s: IsBlocked(%v)", tt.name, err)
		}
	})
	require.NoError(t, router.EnableForwarding())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, client.Probe(tt.proto, netip.AddrPortFrom(netip.MustParseAddr(tt.dst), tt.port), allowed))
		})
	}
}
