package clustercidr

import corev1 "k8s.io/api/core/v1"

// ClusterCIDRSpec is the spec of a ClusterCIDR object (networking.x-k8s.io/v1, the shape of the
// removed networking.k8s.io/v1alpha1 API). Its JSON tags match crd.yaml, so the
// controller decodes an object's spec straight into it.
//
// NodeSelector reuses the core NodeSelector type because that is the field's wire shape; the
// allocator compiles it once into its own matcher (selector.go), so matching a node costs map
// lookups and no client-go import.
type ClusterCIDRSpec struct {
	// NodeSelector selects the nodes that may get pod CIDRs from this ClusterCIDR. Its terms
	// are OR-ed, as the core type defines. nil selects every node.
	NodeSelector *corev1.NodeSelector `json:"nodeSelector,omitempty"`
	// PerNodeHostBits is the number of host bits of each node's block, in both families:
	// the block is a /(32−PerNodeHostBits) for IPv4 and a /(128−PerNodeHostBits) for IPv6.
	PerNodeHostBits int32 `json:"perNodeHostBits"`
	// IPv4 is the IPv4 range in canonical CIDR form, or empty.
	IPv4 string `json:"ipv4,omitempty"`
	// IPv6 is the IPv6 range in canonical CIDR form, or empty.
	IPv6 string `json:"ipv6,omitempty"`
}
