package clustercidr

import (
	"fmt"
	"net/netip"
)

// Node mask sizes kube-controller-manager uses when --node-cidr-mask-size-ipv4/-ipv6 are not
// set, which is how K3s runs it.
const (
	defaultNodeMaskIPv4 = 24
	defaultNodeMaskIPv6 = 64
)

// DefaultClusterCIDRSpec builds the spec of the default ClusterCIDR (named
// DefaultClusterCIDRName) from --cluster-cidr: one or two prefixes, at most one per family,
// and the node mask sizes (0 means kube-controller-manager's default, /24 and /64). The spec
// has no node selector, so it takes every node no other ClusterCIDR takes.
//
// perNodeHostBits follows upstream's multi-CIDR allocator. Single stack: the family's host bits (32−mask or
// 128−mask), raised to 4 if smaller. Dual stack, where one value serves both families: the
// IPv4 host bits if they are at least 4 and no more than the IPv6 host bits; else the IPv6
// host bits if they lie in [4, 32]; else 4. So the default /24 + /64 gives 8, and every node
// gets an IPv4 /24 and an IPv6 /120, not a /64 (K3s docs: dual-stack ClusterCIDRs share one
// perNodeHostBits). Without --multi-cluster-cidr no ClusterCIDR is involved and each family
// keeps its own mask (Allocator.AddRange).
//
// Prefixes with host bits set are masked, as kube-controller-manager parses the flag. The
// result is validated; an error matches ErrInvalidClusterCIDR. As upstream did,
// the object is created once when none named DefaultClusterCIDRName exists; a later change of
// the flag does not alter it, since the spec is immutable.
func DefaultClusterCIDRSpec(clusterCIDRs []netip.Prefix, nodeMaskIPv4, nodeMaskIPv6 int) (ClusterCIDRSpec, error) {
	if nodeMaskIPv4 == 0 {
		nodeMaskIPv4 = defaultNodeMaskIPv4
	}
	if nodeMaskIPv6 == 0 {
		nodeMaskIPv6 = defaultNodeMaskIPv6
	}
	if nodeMaskIPv4 < 0 || nodeMaskIPv4 > 32 || nodeMaskIPv6 < 0 || nodeMaskIPv6 > 128 {
		return ClusterCIDRSpec{}, fmt.Errorf("node mask sizes /%d (IPv4) and /%d (IPv6): %w", nodeMaskIPv4, nodeMaskIPv6, ErrInvalidClusterCIDR)
	}
	if len(clusterCIDRs) == 0 || len(clusterCIDRs) > 2 {
		return ClusterCIDRSpec{}, fmt.Errorf("cluster CIDRs %v: want one or two: %w", clusterCIDRs, ErrInvalidClusterCIDR)
	}
	var byFam [numFamilies]netip.Prefix
	for _, p := range clusterCIDRs {
		if !p.IsValid() || p.Addr().Is4In6() {
			return ClusterCIDRSpec{}, fmt.Errorf("cluster CIDR %s: %w", p, ErrInvalidClusterCIDR)
		}
		f := familyOf(p.Addr())
		if byFam[f].IsValid() {
			return ClusterCIDRSpec{}, fmt.Errorf("cluster CIDRs %v: two %s prefixes: %w", clusterCIDRs, f, ErrInvalidClusterCIDR)
		}
		byFam[f] = p.Masked()
	}

	host4, host6 := 32-nodeMaskIPv4, 128-nodeMaskIPv6
	var hostBits int
	switch {
	case byFam[ipv4].IsValid() && byFam[ipv6].IsValid():
		switch {
		case host4 >= minPerNodeHostBits && host4 <= host6:
			hostBits = host4
		case host6 >= minPerNodeHostBits && host6 <= 32:
			hostBits = host6
		default:
			hostBits = minPerNodeHostBits
		}
	case byFam[ipv4].IsValid():
		hostBits = max(host4, minPerNodeHostBits)
	default:
		hostBits = max(host6, minPerNodeHostBits)
	}

	spec := ClusterCIDRSpec{PerNodeHostBits: int32(hostBits)}
	if byFam[ipv4].IsValid() {
		spec.IPv4 = byFam[ipv4].String()
	}
	if byFam[ipv6].IsValid() {
		spec.IPv6 = byFam[ipv6].String()
	}
	if err := ValidateClusterCIDRSpec(spec); err != nil {
		return ClusterCIDRSpec{}, fmt.Errorf("default ClusterCIDR from --cluster-cidr %v: %w", clusterCIDRs, err)
	}
	return spec, nil
}
