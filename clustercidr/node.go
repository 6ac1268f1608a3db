package clustercidr

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Node is what the allocator needs to know about a Node: its name (for matchFields on
// metadata.name), its labels (for matchExpressions) and the pod CIDRs it already has.
type Node struct {
	Name     string
	Labels   map[string]string
	PodCIDRs []netip.Prefix
}

// nodeFromAPI is the adapter from the API object: spec.podCIDRs, or the legacy spec.podCIDR
// when the list is empty.
func nodeFromAPI(n *corev1.Node) (Node, error) {
	raw := n.Spec.PodCIDRs
	if len(raw) == 0 && n.Spec.PodCIDR != "" {
		raw = []string{n.Spec.PodCIDR}
	}
	out := Node{Name: n.Name, Labels: n.Labels}
	for _, s := range raw {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Node{}, fmt.Errorf("node %q: pod CIDR %q: %w: %w", n.Name, s, ErrInvalidNode, err)
		}
		out.PodCIDRs = append(out.PodCIDRs, p)
	}
	return out, nil
}

// normalizePodCIDRs masks a node's pod CIDRs and orders them IPv4 first. It rejects what a
// Node cannot carry (kube-apiserver allows one pod CIDR per family) and IPv4-mapped IPv6.
// The input slice is not modified.
func normalizePodCIDRs(name string, in []netip.Prefix) ([]netip.Prefix, error) {
	if name == "" {
		return nil, fmt.Errorf("node without a name: %w", ErrInvalidNode)
	}
	var byFam [numFamilies]netip.Prefix
	for _, p := range in {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("node %q: pod CIDR %s: %w", name, p, ErrInvalidNode)
		}
		f := familyOf(p.Addr())
		if byFam[f].IsValid() {
			return nil, fmt.Errorf("node %q: two %s pod CIDRs %s and %s: %w", name, f, byFam[f], p, ErrInvalidNode)
		}
		byFam[f] = p.Masked()
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range byFam {
		if p.IsValid() {
			out = append(out, p)
		}
	}
	return out, nil
}
