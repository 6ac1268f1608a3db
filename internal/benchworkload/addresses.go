package benchworkload

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The annotation that marks the nodes kwok simulates (its
// --manage-nodes-with-annotation-selector, as internal/controlplane runs it).
const (
	KwokAnnotation      = "kwok.x-k8s.io/node"
	KwokAnnotationValue = "fake"
)

// NodeName is the name of node n.
func NodeName(n int) string { return fmt.Sprintf("node-%d", n) }

// scaledAddressing reports whether the workload outgrows 10.42.<node>.0/24 per node (more
// than 256 nodes or 253 local pods, as the 10× and 100× workloads do).
func (s Size) scaledAddressing() bool { return s.Nodes > 256 || s.Local > 253 }

// PodCIDR is node n's pod CIDR: 10.42.<n>.0/24 in the workload of record; scaled up, node-0
// has 10.0.0.0/18 and each other node a /24 of 10.64.0.0/10.
func (s Size) PodCIDR(n int) netip.Prefix {
	if !s.scaledAddressing() {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(n), 0}), 24)
	}
	if n == 0 {
		return netip.MustParsePrefix("10.0.0.0/18")
	}
	return netip.PrefixFrom(addr4(0x0A400000+uint32(n)<<8), 24)
}

// PodIP is the address of the i-th pod of node n: the (i+2)-th of its pod CIDR.
func (s Size) PodIP(n, i int) string {
	return addr4(ip4(s.PodCIDR(n).Addr()) + uint32(i) + 2).String()
}

// NodeIP is node n's InternalIP: 172.16.0.2 + n, so 172.16.0.1 is left for a control plane
// on the same link.
func NodeIP(n int) netip.Addr { return addr4(0xAC100002 + uint32(n)) }

// NodeObjects are the kwok nodes of s with their pod CIDRs. Their addresses (NodeIP, and the
// Hostname kwok would otherwise add) are in Status, which a create drops: they go through the
// status subresource afterwards.
func (s Size) NodeObjects() []*corev1.Node {
	var nodes []*corev1.Node
	for n := range s.Nodes {
		name, cidr := NodeName(n), s.PodCIDR(n).String()
		nodes = append(nodes, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{KwokAnnotation: KwokAnnotationValue},
				Labels: map[string]string{corev1.LabelHostname: name}},
			Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: NodeIP(n).String()},
				{Type: corev1.NodeHostName, Address: name},
			}},
		})
	}
	return nodes
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}
