package netns_test

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

func TestFirewallRulesInsideANamespaceBlockProbes(t *testing.T) {
	t.Parallel()
	p := newVethPair(t)
	// Several rows expect ICMP errors back; the kernel's per-peer ICMP rate
	// limit would otherwise turn a late one into a timeout.
	for _, ns := range []*netns.Namespace{p.client, p.server} {
		require.NoError(t, ns.SetSysctl("net.ipv4.icmp_ratelimit", "0"))
		require.NoError(t, ns.SetSysctl("net.ipv6.icmp.ratelimit", "0"))
	}
	tests := []struct {
		name     string
		proto    netns.Proto
		ipv6     bool
		inClient bool     // the rule goes in the client's OUTPUT instead of the server's INPUT
		target   []string // what follows -j
		want     error
	}{
		{name: "an iptables DROP makes a tcp probe time out", proto: netns.TCP, target: []string{"DROP"}, want: netns.ErrTimeout},
		{name: "an ip6tables DROP makes a tcp probe time out", proto: netns.TCP, ipv6: true, target: []string{"DROP"}, want: netns.ErrTimeout},
		{name: "an iptables REJECT with a tcp reset makes a tcp probe refused", proto: netns.TCP, target: []string{"REJECT", "--reject-with", "tcp-reset"}, want: netns.ErrRefused},
		{name: "an iptables REJECT with host unreachable makes a tcp probe unreachable", proto: netns.TCP, target: []string{"REJECT", "--reject-with", "icmp-host-unreachable"}, want: netns.ErrUnreachable},
		// TCP retransmits a SYN that OUTPUT drops; a UDP send fails with EPERM at once.
		{name: "an iptables DROP in the client's OUTPUT makes a tcp probe time out", proto: netns.TCP, inClient: true, target: []string{"DROP"}, want: netns.ErrTimeout},
		{name: "an iptables DROP in the client's OUTPUT makes a udp probe unreachable", proto: netns.UDP, inClient: true, target: []string{"DROP"}, want: netns.ErrUnreachable},
		{name: "an iptables DROP makes a udp probe time out", proto: netns.UDP, target: []string{"DROP"}, want: netns.ErrTimeout},
		{name: "an ip6tables DROP makes a udp probe time out", proto: netns.UDP, ipv6: true, target: []string{"DROP"}, want: netns.ErrTimeout},
		{name: "an iptables REJECT makes a udp probe refused", proto: netns.UDP, target: []string{"REJECT"}, want: netns.ErrRefused},
		{name: "an ip6tables REJECT makes a udp probe refused", proto: netns.UDP, ipv6: true, target: []string{"REJECT"}, want: netns.ErrRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, p.server, tt.proto)
			dst, cmd := p.serverV4, "iptables"
			if tt.ipv6 {
				dst, cmd = p.serverV6, "ip6tables"
			}
			addr := netip.AddrPortFrom(dst, srv.Port())
			require.NoError(t, p.client.Probe(tt.proto, addr, allowed), "probe before the rule")

			ns, chain := p.server, "INPUT"
			if tt.inClient {
				ns, chain = p.client, "OUTPUT"
			}
			// Each row matches only its own server's port, so rows run in parallel.
			args := append([]string{"-A", chain, "-p", string(tt.proto), "--dport", strconv.Itoa(int(srv.Port())), "-j"}, tt.target...)
			_, err := ns.Exec(t.Context(), cmd, args...)
			require.NoError(t, err)

			err = p.client.Probe(tt.proto, addr, blocked)
			require.ErrorIs(t, err, tt.want)
			assert.True(t, netns.IsBlocked(err), "IsBlocked(%v)", err)
		})
	}
}

func TestProbingAPortWithoutAServerIsRefused(t *testing.T) {
	t.Parallel()
	p := newVethPair(t)
	for _, proto := range []netns.Proto{netns.TCP, netns.UDP} {
		for _, dst := range []netip.Addr{p.serverV4, p.serverV6} {
			// Port 9 (discard) has no listener in a fresh namespace.
			err := p.client.Probe(proto, netip.AddrPortFrom(dst, 9), allowed)
			require.ErrorIs(t, err, netns.ErrRefused, "%s to %s", proto, dst)
		}
	}
}
