package compose

import (
	"fmt"
	"net/netip"
	"slices"
)

// ClusterSettings are the server flags of the cluster-wide controllers, named after K3s's.
type ClusterSettings struct {
	// DataDir is --data-dir: the packaged manifests are staged into <DataDir>/server/manifests
	// and the charts they name are read from <DataDir>/server/static, as in K3s.
	DataDir string
	// Disable holds the items of --disable (servicelb, coredns, traefik, any manifest name).
	Disable []string
	// DisableCloudController is --disable-cloud-controller: the stub leaves Nodes alone.
	DisableCloudController bool
	// DisableNodeIPAM runs no pod CIDR allocator, for clusters whose kube-controller-manager
	// allocates node CIDRs. K3s has no such switch: its controller manager never allocates.
	DisableNodeIPAM bool
	// DisableDeploy runs neither the deploy nor the Helm controller and stages no manifests,
	// for clusters that install their DNS and ingress themselves.
	DisableDeploy bool
	// DisableHelmController is --disable-helm-controller: HelmCharts are left to someone else.
	DisableHelmController bool
	// MultiClusterCIDR is --multi-cluster-cidr: ClusterCIDR objects decide the pod CIDRs.
	MultiClusterCIDR bool
	// NodeCIDRMaskSizeIPv4 and NodeCIDRMaskSizeIPv6 are the prefix lengths of the nodes' pod
	// CIDRs, K3s's --kube-controller-manager-arg=node-cidr-mask-size[-ipv4|-ipv6]; 0 means
	// /24 and /64.
	NodeCIDRMaskSizeIPv4, NodeCIDRMaskSizeIPv6 int
	// ClusterCIDRs and ServiceCIDRs are --cluster-cidr and --service-cidr, one per family.
	ClusterCIDRs, ServiceCIDRs []netip.Prefix
	// ClusterDNS and ClusterDomain are --cluster-dns and --cluster-domain, for CoreDNS.
	ClusterDNS    []netip.Addr
	ClusterDomain string
	// ServiceLBNamespace is --servicelb-namespace, where the LB DaemonSets run.
	ServiceLBNamespace string
	// ServiceLBReservedHostPorts is --servicelb-reserved-host-ports: node ports ServiceLB
	// refuses to any LoadBalancer Service.
	ServiceLBReservedHostPorts []int32
	// SystemDefaultRegistry is --system-default-registry, prefixed to every system image.
	SystemDefaultRegistry string
	// HelmJobImage is --helm-job-image, the image of the HelmCharts' jobs; "" is K3s's
	// default behind SystemDefaultRegistry.
	HelmJobImage string
	// APIServerPort is where the API server listens on a server's own addresses: the jobs
	// of bootstrap HelmCharts, which run in a server's host network before the cluster's
	// network exists, reach it on 127.0.0.1 there. 0 is 6443, K3s's and kubeadm's port.
	APIServerPort int
}

// Disabled reports whether item was named in --disable.
func (s ClusterSettings) Disabled(item string) bool { return slices.Contains(s.Disable, item) }

// Strings formats addresses or prefixes for the options that take them as text.
func Strings[T fmt.Stringer](items []T) []string {
	out := make([]string, 0, len(items))
	for _, item := range items {
		out = append(out, item.String())
	}
	return out
}
