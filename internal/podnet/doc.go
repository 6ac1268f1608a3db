// Package podnet is a node's pod network, the part K3s's embedded flannel plays: once the
// node's spec.podCIDRs are assigned (by clustercidr, so a ClusterCIDR decides the pod addresses
// of a real node) it writes the bridge CNI configuration containerd uses for every pod, routes
// every other node's pod CIDRs through that node's address (flannel's host-gw backend: the
// nodes share a layer-2 network), and masquerades pod traffic that leaves the cluster's pod
// ranges, so pod-to-pod traffic keeps its source address across nodes (NetworkPolicy depends
// on it). Chains are flannel's (FLANNEL-POSTRTG, FLANNEL-FWD), so K3s's cleanup scripts find
// them; routes carry a protocol number of their own, so only ours are ever removed.
package podnet
