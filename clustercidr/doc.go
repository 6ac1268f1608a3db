// Package clustercidr allocates pod CIDRs to Nodes from the cluster CIDR and, as K3s's
// --multi-cluster-cidr does, from ClusterCIDR objects that select nodes by label, each
// handing out blocks of perNodeHostBits per IP family.
//
// The rules live in the pure Allocator: the order in which the removed upstream multi-CIDR
// range allocator (KEP-2593, kube-controller-manager's MultiCIDRRangeAllocator) tried
// ClusterCIDRs, OR-ed selector terms, its global overlap check, service CIDRs reserved. The
// Controller feeds it from the API:
//
//   - Without Options.MultiClusterCIDR it allocates from Options.ClusterCIDRs alone, as
//     kube-controller-manager's range allocator does in K3s, each family with its own node
//     mask (/24 and /64). It neither installs the CRD nor reads or writes ClusterCIDR
//     objects, so it also runs with RBAC that has no rule for them.
//   - With it, Start installs the ClusterCIDR CRD (networking.x-k8s.io/v1, crd.yaml) by
//     server-side apply and waits until it is Established, creates default-cluster-cidr from
//     the flags once (never touched again, as upstream), and watches ClusterCIDRs through a
//     dynamic informer of its own. Every ClusterCIDR gets Finalizer; a deleted one stays until
//     no Node holds a block from it, with a ClusterCIDRInUse Warning Event naming the Nodes.
//
// Start-up follows upstream's allocator: every ClusterCIDR (terminating ones too), then every Node's
// existing pod CIDRs from a live list, then the terminating marks; only then are blocks handed
// out. A Node gets its block with one JSON merge patch of spec.podCIDR and spec.podCIDRs,
// conditional on the Node's resourceVersion; after a conflict the Node is re-read and what the
// API says wins. A Node that has pod CIDRs keeps them. CIDRNotAvailable Nodes wait and are
// queued again when a ClusterCIDR appears or a Node is released.
//
// Several instances (HA servers) must run under one Lease (package leader, or the embedding
// process's own leader election): a resourceVersion precondition on one Node cannot
// stop two allocators from giving one block to two different Nodes. A new leader rebuilds its
// state from the API before allocating, and so does an allocator whose conflict showed that
// another one gave a Node other CIDRs (a former leader still at work): its workers finish
// what they hold, wait while every Node is read back, and go on from there.
package clustercidr
