package netns

import (
	"context"
	"fmt"
	"net/netip"
)

// AddRoute adds a route to dst via the gateway via, which must be reachable on
// a directly connected subnet. dst and via must be of the same IP family.
func (n *Namespace) AddRoute(ctx context.Context, dst netip.Prefix, via netip.Addr) error {
	if !dst.IsValid() || !via.IsValid() || dst.Addr().Is4() != via.Is4() {
		return fmt.Errorf("adding route to %v via %v in netns %s: need a prefix and a gateway of one IP family", dst, via, n.name)
	}
	if err := n.ip(ctx, "route", "add", dst.Masked().String(), "via", via.String()); err != nil {
		return fmt.Errorf("adding route to %s via %s in netns %s: %w", dst, via, n.name, err)
	}
	return nil
}

// AddDefaultRoute adds the default route of via's IP family (0.0.0.0/0 or ::/0)
// through via.
func (n *Namespace) AddDefaultRoute(ctx context.Context, via netip.Addr) error {
	unspec := netip.IPv6Unspecified()
	if via.Is4() {
		unspec = netip.IPv4Unspecified()
	}
	return n.AddRoute(ctx, netip.PrefixFrom(unspec, 0), via)
}
