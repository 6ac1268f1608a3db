package clustercidr

import _ "embed"

// API identity of the ClusterCIDR custom resource. The group is the one the out-of-tree
// successor kubernetes-sigs/node-ipam-controller uses, since the in-tree
// networking.k8s.io/v1alpha1 API was removed in Kubernetes 1.29.
const (
	// Group is the API group of ClusterCIDR.
	Group = "networking.x-k8s.io"
	// Version is the served and stored version.
	Version = "v1"
	// Kind is the object kind.
	Kind = "ClusterCIDR"
	// Resource is the plural resource name.
	Resource = "clustercidrs"

	// DefaultClusterCIDRName names the ClusterCIDR built from --cluster-cidr.
	DefaultClusterCIDRName = "default-cluster-cidr"

	// Finalizer keeps a ClusterCIDR until no node holds pod CIDRs from it. Same name as
	// kube-controller-manager's (the name its code used, not the one KEP-2593 gives), so objects move
	// between K3s and k3snet.
	Finalizer = "networking.k8s.io/cluster-cidr-finalizer"
)

//go:embed crd.yaml
var crdYAML []byte

// CRDYAML returns the CustomResourceDefinition of ClusterCIDR as YAML: the schema of the removed
// networking.k8s.io/v1alpha1 ClusterCIDR API with its validation in CEL (immutable spec, CIDR
// families, host-bit limits). The caller gets its own copy.
func CRDYAML() []byte {
	return append([]byte(nil), crdYAML...)
}
