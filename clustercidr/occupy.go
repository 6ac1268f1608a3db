package clustercidr

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Occupy records the pod CIDRs node n already has (spec.podCIDRs), so they are never handed
// out again. A node's pod CIDRs are facts: they never change, whatever the ClusterCIDRs say
// (upstream's allocator never changed existing podCIDRs either). Prefixes with host bits set are masked.
//
// The CIDRs are attributed, for deletion protection, to the first ClusterCIDR in rankFor
// order that contains all of them; failing that, to any ClusterCIDR that contains them, even
// a terminating one or one whose selector no longer matches the node's labels (they came from
// it); failing that, each CIDR on its own in the same order, as for a dual-stack node whose
// IPv4 and IPv6 CIDRs came from different ClusterCIDRs: deleting either then waits for the
// node. A CIDR in no ClusterCIDR is still held, and Occupy returns an error matching
// ErrCIDROutsideClusterCIDRs naming it, which the controller reports as a Warning Event. A
// ClusterCIDR added later that contains it adopts it. (Upstream's multi-CIDR allocator
// refused to start instead.)
//
// Occupying the same CIDRs again is a no-op. Different CIDRs replace what the node held, as
// when a Node patch raced with another writer. Errors on which nothing changes:
// ErrAlreadyAllocated (another node holds an overlapping CIDR) and ErrInvalidNode.
func (a *Allocator) Occupy(n Node) (Allocation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.occupyLocked(n)
}

func (a *Allocator) occupyLocked(n Node) (Allocation, error) {
	prefixes, err := normalizePodCIDRs(n.Name, n.PodCIDRs)
	if err != nil {
		return Allocation{}, err
	}
	if len(prefixes) == 0 {
		return Allocation{}, fmt.Errorf("node %q has no pod CIDRs to occupy: %w", n.Name, ErrInvalidNode)
	}
	old := a.nodes[n.Name]
	if old != nil && slices.Equal(old.prefixes, prefixes) {
		return old.allocation(), outsideError(n.Name, old)
	}
	for _, p := range prefixes {
		if _, hit := a.used[familyOf(p.Addr())].overlapping(spanOf(p)); !hit {
			continue
		}
		if other, theirs, ok := a.overlappingNode(p, n.Name); ok {
			return Allocation{}, fmt.Errorf("node %q: pod CIDR %s overlaps %s of node %q: %w", n.Name, p, theirs, other, ErrAlreadyAllocated)
		}
	}

	h := &held{prefixes: prefixes, owners: a.attribute(n, prefixes)}
	if old != nil {
		a.releaseLocked(n.Name, old)
	}
	for _, p := range prefixes {
		a.used[familyOf(p.Addr())].add(spanOf(p))
	}
	a.nodes[n.Name] = h
	for _, cc := range h.owners {
		if cc != nil {
			cc.nodes[n.Name] = struct{}{}
		}
	}
	if slices.Contains(h.owners, nil) {
		a.unattributed[n.Name] = h
	}
	return h.allocation(), outsideError(n.Name, h)
}

// outsideError is the error Occupy returns for a node with CIDRs in no ClusterCIDR.
func outsideError(name string, h *held) error {
	outside := h.outside()
	if len(outside) == 0 {
		return nil
	}
	return fmt.Errorf("node %q: pod CIDRs %v are held but lie in no ClusterCIDR: %w", name, outside, ErrCIDROutsideClusterCIDRs)
}

// overlappingNode finds the node, other than self, holding a CIDR that overlaps p; the first
// by name if several do, so the error is deterministic. It scans every node, and runs only
// when the range set already reported an overlap.
func (a *Allocator) overlappingNode(p netip.Prefix, self string) (string, netip.Prefix, bool) {
	var name string
	var theirs netip.Prefix
	for other, h := range a.nodes {
		if other == self || (name != "" && other > name) {
			continue
		}
		for _, q := range h.prefixes {
			if q.Overlaps(p) {
				name, theirs = other, q
				break
			}
		}
	}
	return name, theirs, name != ""
}

// attribute picks the ClusterCIDR each of a node's existing CIDRs belongs to (see Occupy):
// one for all of them if one contains them all, else one per CIDR, nil for a CIDR in none.
func (a *Allocator) attribute(n Node, prefixes []netip.Prefix) []*clusterCIDR {
	a.rank(n)
	defer a.clearScratch()
	owners := make([]*clusterCIDR, len(prefixes))
	if cc := a.firstContaining(prefixes...); cc != nil {
		for i := range owners {
			owners[i] = cc
		}
		return owners
	}
	for i, p := range prefixes {
		owners[i] = a.firstContaining(p)
	}
	return owners
}

// firstContaining returns the first ClusterCIDR containing all prefixes: among those in
// a.scratch (the ones selecting the node, best first), else among all, else nil.
func (a *Allocator) firstContaining(prefixes ...netip.Prefix) *clusterCIDR {
	for _, c := range a.scratch {
		if c.cc.containsAll(prefixes...) {
			return c.cc
		}
	}
	for _, cc := range a.ranked {
		if cc.containsAll(prefixes...) {
			return cc
		}
	}
	return nil
}

// Restore occupies the pod CIDRs of every node in nodes that has some, in name order, so a
// conflict between two nodes is always reported on the same one. The controller calls it once
// at start-up with every Node from the lister, after adding every ClusterCIDR and before
// allocating anything (occupy before allocate, as upstream started), then marks the ClusterCIDRs being
// deleted with DeleteClusterCIDR so they keep their nodes. An allocator rebuilt from the
// Nodes another one allocated holds the same CIDRs and goes on allocating as it would have,
// so a restart hands out no CIDR twice.
//
// Nodes that fail do not stop the others; their errors are joined. nodes is not modified.
func (a *Allocator) Restore(nodes []Node) error {
	sorted := slices.SortedFunc(slices.Values(nodes), func(x, y Node) int { return cmp.Compare(x.Name, y.Name) })
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, n := range sorted {
		if len(n.PodCIDRs) == 0 {
			continue
		}
		if _, err := a.occupyLocked(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
