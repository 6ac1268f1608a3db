// Package compose is what a k3snet binary is made of besides flags: the controllers it runs
// on one shared informer factory, each cluster-wide one under a Lease of its own (as K3s runs
// its controllers on every server, one server leading each), the /healthz, /readyz and
// /metrics server, and the builders of the node-local controllers; the cluster-wide ones,
// behind K3s's disable switches, are built by internal/clusterwide.
//
// examples/k3slike (a K3s server with its own control plane) and cmd/k3snet (the same
// controllers installed on someone else's cluster) both compose their controllers here, so
// the two run the same code. It also holds the uninstall protocol of cmd/k3snet's manifests.
package compose
