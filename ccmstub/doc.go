// Package ccmstub is the embedded cloud-controller stub of K3s: it fills each Node's
// status.addresses from the k3s.io/* annotations the agent writes, sets spec.providerID to
// k3s://<node>, removes the node.cloudprovider.kubernetes.io/uninitialized taint once the
// addresses exist, and hosts the ServiceLB load balancer controller.
package ccmstub
