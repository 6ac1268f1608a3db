// Package clusterwide builds the cluster-wide controllers a K3s server runs next to
// Kubernetes (the cloud-controller stub with ServiceLB, the pod CIDR allocator, the deploy
// controller, NodeHosts and the Helm controller) from the server's flags, for
// examples/k3slike and `k3snet controllers`. It is apart from internal/compose so that a
// binary that runs only the node's part (`k3snet node`) does not link the Helm and kustomize
// libraries the packaged components need: on Linux a process's RSS counts every mapped page
// of its binary's code that it touches.
package clusterwide
