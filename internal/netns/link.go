package netns

import (
	"context"
	"fmt"
	"net/netip"
)

// Link is a network interface inside a Namespace, named as `ip link` shows it.
// It is a plain value: copying it does not copy the interface.
type Link struct {
	ns   *Namespace
	name string
}

// Link returns the interface called name inside the namespace, such as "lo" or
// one created by AddVeth. It does not check that the interface exists.
func (n *Namespace) Link(name string) Link { return Link{ns: n, name: name} }

// Name returns the interface name.
func (l Link) Name() string { return l.name }

// Namespace returns the namespace the interface is in.
func (l Link) Namespace() *Namespace { return l.ns }

// String returns NAMESPACE/INTERFACE.
func (l Link) String() string { return l.ns.name + "/" + l.name }

// Up sets the interface administratively up.
func (l Link) Up(ctx context.Context) error {
	if err := l.ns.ip(ctx, "link", "set", "dev", l.name, "up"); err != nil {
		return fmt.Errorf("setting %s up: %w", l, err)
	}
	return nil
}

// AddAddr assigns addr (host address and prefix length, such as 10.0.0.1/24 or
// fd00::1/64) to the interface. IPv6 addresses skip duplicate address
// detection (nodad), so they are usable at once instead of after about a second.
func (l Link) AddAddr(ctx context.Context, addr netip.Prefix) error {
	if !addr.IsValid() {
		return fmt.Errorf("adding address to %s: invalid prefix %v", l, addr)
	}
	args := []string{"addr", "add", addr.String(), "dev", l.name}
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		args = append(args, "nodad")
	}
	if err := l.ns.ip(ctx, args...); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", addr, l, err)
	}
	return nil
}

// SetMaster enslaves the interface to bridge, which must be in the same
// namespace.
func (l Link) SetMaster(ctx context.Context, bridge Link) error {
	if l.ns != bridge.ns {
		return fmt.Errorf("attaching %s to bridge %s: bridge is in another namespace", l, bridge)
	}
	if err := l.ns.ip(ctx, "link", "set", "dev", l.name, "master", bridge.name); err != nil {
		return fmt.Errorf("attaching %s to bridge %s: %w", l, bridge, err)
	}
	return nil
}

// AddVeth creates a veth pair with one end called name in this namespace and
// the other called peerName in peer (which may be this namespace too), and sets
// both up. Each end is created directly in its namespace, so names only need to
// be unique there, never on the host.
func (n *Namespace) AddVeth(ctx context.Context, name string, peer *Namespace, peerName string) (Link, Link, error) {
	args := []string{"link", "add", name, "type", "veth", "peer", "name", peerName}
	if peer != n {
		args = append(args, "netns", peer.name)
	}
	local, remote := n.Link(name), peer.Link(peerName)
	if err := n.ip(ctx, args...); err != nil {
		return Link{}, Link{}, fmt.Errorf("creating veth %s to %s: %w", local, remote, err)
	}
	for _, l := range []Link{local, remote} {
		if err := l.Up(ctx); err != nil {
			return Link{}, Link{}, fmt.Errorf("creating veth %s to %s: %w", local, remote, err)
		}
	}
	return local, remote, nil
}

// AddBridge creates a Linux bridge called name in the namespace and sets it up.
// Attach ports with Link.SetMaster. The bridge runs without STP, so ports
// forward as soon as they are up.
func (n *Namespace) AddBridge(ctx context.Context, name string) (Link, error) {
	br := n.Link(name)
	if err := n.ip(ctx, "link", "add", name, "type", "bridge"); err != nil {
		return Link{}, fmt.Errorf("creating bridge %s: %w", br, err)
	}
	if err := br.Up(ctx); err != nil {
		return Link{}, fmt.Errorf("creating bridge %s: %w", br, err)
	}
	return br, nil
}
