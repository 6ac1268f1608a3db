package nodecluster

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/k3snet/k3snet/internal/netns"
)

// Subnet is every cluster's LAN. Each cluster has a fabric namespace of its own, so clusters
// running side by side never see each other's addresses.
var Subnet = netip.MustParsePrefix("172.30.0.0/24")

// Gateway is the fabric's own address on the LAN: where tests talk to the cluster from.
var Gateway = netip.MustParseAddr("172.30.0.1")

// Subnet6 is the LAN's IPv6 range in a dual-stack cluster: every machine on the LAN has
// fd30::<n> beside 172.30.0.<n> (IPv6Of).
var Subnet6 = netip.MustParsePrefix("fd30::/64")

// IPv6Of is the IPv6 address of the LAN machine whose IPv4 address is ip: fd30::<n> for
// 172.30.0.<n>, written with the same digits.
func IPv6Of(ip netip.Addr) netip.Addr {
	return netip.MustParseAddr("fd30::" + strconv.Itoa(int(ip.As4()[3])))
}

// AddHost attaches a namespace to the LAN with the next free address and a default route to
// the fabric: a machine outside the cluster, as a client of its Services.
func (c *Cluster) AddHost(t testing.TB, prefix string) (*netns.Namespace, netip.Addr) {
	t.Helper()
	ctx := t.Context()
	ns, err := netns.New(ctx, prefix)
	if err != nil {
		t.Fatalf("nodecluster: %v", err)
	}
	c.mu.Lock()
	c.hosts = append(c.hosts, ns)
	ip := c.nextHost
	c.nextHost = c.nextHost.Next()
	c.mu.Unlock()
	eth0, peer, err := ns.AddVeth(ctx, "eth0", c.Fabric, "h"+strings.TrimPrefix(ns.Name(), prefix))
	if err == nil {
		err = peer.SetMaster(ctx, c.Fabric.Link(fabricBridge))
	}
	for _, a := range c.lanAddrs(ip) {
		if err == nil {
			err = eth0.AddAddr(ctx, a)
		}
	}
	if err != nil {
		t.Fatalf("nodecluster: wiring host %s: %v", ns.Name(), err)
	}
	return ns, ip
}

// lanAddrs are the LAN addresses of the machine whose IPv4 address is ip: that one, and in a
// dual-stack cluster its IPv6 twin.
func (c *Cluster) lanAddrs(ip netip.Addr) []netip.Prefix {
	out := []netip.Prefix{netip.PrefixFrom(ip, Subnet.Bits())}
	if c.dualStack {
		out = append(out, netip.PrefixFrom(IPv6Of(ip), Subnet6.Bits()))
	}
	return out
}

// gateway is the fabric's address of ip's family.
func (c *Cluster) gateway(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		return IPv6Of(Gateway)
	}
	return Gateway
}
