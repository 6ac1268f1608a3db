package netns_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/k3snet/k3snet/internal/netns"
)

func TestNamespacesOnABridgeReachEachOther(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sw := netns.NewT(t, "switch")
	br, err := sw.AddBridge(ctx, "br0")
	require.NoError(t, err)

	type host struct {
		ns     *netns.Namespace
		v4, v6 netip.Addr
	}
	var hosts []host
	for i := 1; i <= 3; i++ {
		h := host{
			ns: netns.NewT(t, fmt.Sprintf("host%d", i)),
			v4: netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", i)),
			v6: netip.MustParseAddr(fmt.Sprintf("fd00::%d", i)),
		}
		// Namespace names fit in an interface name, so the switch port is named
		// after the host it leads to.
		eth, port, err := h.ns.AddVeth(ctx, "eth0", sw, h.ns.Name())
		require.NoError(t, err)
		require.NoError(t, port.SetMaster(ctx, br))
		addAddrs(t, eth, netip.PrefixFrom(h.v4, 24).String(), netip.PrefixFrom(h.v6, 64).String())
		hosts = append(hosts, h)
	}

	for _, to := range hosts {
		tcp, udp := serve(t, to.ns, netns.TCP), serve(t, to.ns, netns.UDP)
		for _, from := range hosts {
			if from.ns == to.ns {
				continue
			}
			t.Run(fmt.Sprintf("%s reaches %s over tcp and udp on ipv4 and ipv6", from.ns, to.ns), func(t *testing.T) {
				for _, srv := range []*netns.EchoServer{tcp, udp} {
					for _, dst := range []netip.Addr{to.v4, to.v6} {
						proto := netns.TCP
						if srv == udp {
							proto = netns.UDP
						}
						require.NoError(t, from.ns.Probe(proto, netip.AddrPortFrom(dst, srv.Port()), allowed), "%s to %s", proto, dst)
					}
				}
			})
		}
	}
}
