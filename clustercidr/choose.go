package clustercidr

import (
	"cmp"
	"slices"
	"strings"
)

// candidate is a ClusterCIDR that selects a node, with the number of requirements it matched.
type candidate struct {
	cc      *clusterCIDR
	matched int
}

// compareStatic orders ClusterCIDRs by the node-independent priorities of upstream's
// multi-CIDR range allocator (KEP-2593's MultiCIDRRangeAllocator):
//
//	P1 fewer allocatable pod CIDRs first (2^(node mask − cluster mask), the smaller family's);
//	P2 smaller per-node block first (fewer host bits);
//	P3 smaller canonical selector text;
//	P4 lower CIDR (the IPv4 prefix if any, else the IPv6 one);
//	then the name, so two ClusterCIDRs with equal specs still have one order.
//
// P2 compares perNodeHostBits, which both families share, where upstream compared the IPv4
// mask of one ClusterCIDR with possibly the IPv6 mask of another. P4 compares addresses,
// not strings (10.0.0.10 is not before 10.0.0.9).
func compareStatic(a, b *clusterCIDR) int {
	if c := cmp.Compare(a.sizeLog2(), b.sizeLog2()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.hostBits, b.hostBits); c != 0 {
		return c
	}
	if c := strings.Compare(a.selector.String(), b.selector.String()); c != 0 {
		return c
	}
	pa, pb := a.primary(), b.primary()
	if c := pa.Addr().Compare(pb.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(pa.Bits(), pb.Bits()); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// rankFor appends to dst, in the order allocation tries them, the ClusterCIDRs of ranked
// (already in compareStatic order) that select n and are not terminating:
//
//	P0 more matching requirements first (selector.go: the longest matching term), so
//	selector-less ClusterCIDRs, the default among them, come last (upstream appended them
//	after the heap); then the order of ranked.
//
// Whether a ClusterCIDR still has a free block is the caller's question (as upstream: when a
// family is exhausted, the next ClusterCIDR is tried).
func rankFor(dst []candidate, ranked []*clusterCIDR, n Node) []candidate {
	start := len(dst)
	for _, cc := range ranked {
		if cc.terminating {
			continue
		}
		if k, ok := cc.selector.match(n); ok {
			dst = append(dst, candidate{cc, k})
		}
	}
	slices.SortStableFunc(dst[start:], func(a, b candidate) int { return cmp.Compare(b.matched, a.matched) })
	return dst
}
