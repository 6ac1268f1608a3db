// Package ccmstub is the embedded cloud-controller stub of K3s (K3s's embedded cloud controller
// manager, the "k3s" cloud provider that --disable-cloud-controller turns off).
//
// Server side, Controller fills each Node's status.addresses from the k3s.io/* annotations the
// agent writes (InternalIP, ExternalIP, InternalDNS, ExternalDNS, Hostname, in K3s's order,
// with the legacy labels as fallback), sets spec.providerID to k3s://<node> and the
// instance-type labels to k3s unless they are set, and removes the
// node.cloudprovider.kubernetes.io/uninitialized taint once the addresses exist. It reacts to
// each annotation change at once (K3s re-reads them once a minute), reports bad values in
// Warning Events instead of dropping the node, and hosts the load-balancer controller
// (ServiceLB) as K3s's cloud controller does. Options turn either part off, like K3s's
// --disable-cloud-controller and --disable=servicelb; ClusterRole is the RBAC the node part needs.
//
// Agent side, AnnotateNode writes those annotations on the node's own Node and removes the ones
// no longer configured; ResolveNodeName and ParseIPList apply K3s's rules to --node-name,
// K3S_NODE_NAME, --node-ip and --node-external-ip.
//
// The rules are pure functions over API objects (NodeMetadata and the unexported newNode and
// taintBlockers); the subpackage cloudprovider serves the same rules to forks that run the
// upstream cloud-controller-manager framework. Keys built from Options.Program give RKE2 its
// rke2.io/* keys.
package ccmstub
