// Package netpolworkload loads the NetworkPolicy workload of record (internal/benchworkload
// generates it) into a real cluster, around a node of the caller's: the benchmarks against a
// real API server and the compile benchmarks see the same objects.
package netpolworkload

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/k3snet/k3snet/internal/benchworkload"
)

// Workload is the shape of one workload: Local of the Pods run on node 0, the others spread
// over the remaining Nodes.
type Workload struct {
	Nodes, Namespaces, Pods, Local, Policies int
	// LocalNode names node 0, the node whose pods are local; empty means NodeName(0). A
	// benchmark names its own node here, to load the workload around it.
	LocalNode string
}

// OfRecord is the workload of record scaled by factor: 50 nodes, 100 namespaces, 5,000 pods
// (100 on node 0) and 1,000 policies at 1.
func OfRecord(factor int) Workload {
	s := benchworkload.Record().Scaled(factor)
	return Workload{Nodes: s.Nodes, Namespaces: s.Namespaces, Pods: s.Pods, Local: s.Local, Policies: s.Policies}
}

// NodeName is the name of node i.
func NodeName(i int) string { return benchworkload.NodeName(i) }

// size is w's shape for the generator.
func (w Workload) size() benchworkload.Size {
	return benchworkload.Size{Nodes: w.Nodes, Namespaces: w.Namespaces, Pods: w.Pods, Local: w.Local, Policies: w.Policies}
}

// nodeName is the name of node i of w.
func (w Workload) nodeName(i int) string {
	if i == 0 && w.LocalNode != "" {
		return w.LocalNode
	}
	return NodeName(i)
}

// PodCIDR is node i's pod CIDR.
func (w Workload) PodCIDR(i int) netip.Prefix { return w.size().PodCIDR(i) }

// NamespaceObjects are the workload's Namespaces, labelled by team and env.
func (w Workload) NamespaceObjects() []*corev1.Namespace {
	return benchworkload.Generate(benchworkload.Size{Namespaces: w.Namespaces}).Namespaces
}

// PodObjects are the workload's Pods, Running with their addresses, node 0's on LocalNode,
// each with an image so that a real kubelet could admit it.
func (w Workload) PodObjects() []*corev1.Pod {
	pods := benchworkload.Generate(w.size()).Pods
	for _, p := range pods {
		if p.Spec.NodeName == NodeName(0) {
			p.Spec.NodeName = w.nodeName(0)
		}
		p.Spec.Containers[0].Image = "registry.k8s.io/pause:3.10"
	}
	return pods
}

// PolicyObjects are the workload's NetworkPolicies.
func (w Workload) PolicyObjects() []*networkingv1.NetworkPolicy {
	return benchworkload.Generate(benchworkload.Size{Namespaces: w.Namespaces, Policies: w.Policies}).Policies
}
