// Package servicelb serves Services of type LoadBalancer the way K3s's ServiceLB (Klipper LB)
// does: one hostPort DaemonSet per Service in kube-system whose pods forward the Service's
// ports from every eligible node, with the Service's status.loadBalancer.ingress taken from the
// addresses of the nodes that run a ready LB pod. Node allow-lists and pools follow K3s's
// svccontroller.k3s.cattle.io labels; servicelb/forwarder is the LB pod's own dataplane.
//
// The package is in two layers. The rules are pure functions over API objects: which Services
// are served (serves.go), the DaemonSet (daemonset.go, sourceranges.go, tolerations.go), where
// its pods can run and why not (placement.go), and the published status (status.go). The
// Controller (controller.go) feeds them from informers and writes the difference: the
// DaemonSet by server-side apply (apply.go), the status through the status subresource, the
// service.kubernetes.io/load-balancer-cleanup finalizer, and Events with K3s's reasons.
// Cleanup (cleanup.go) is --disable=servicelb, and ClusterRole (rbac.go) is all the
// controller needs.
//
// Where K3s has known bugs the controller does better: Service label changes (lbpool)
// are applied, the last enablelb label removed ends allow-list mode (K3s #14625), node address
// changes reach the status (K3s #7036), classed Services are never touched, ipMode
// is set and compared by value, and a Service no node can host gets a Warning naming why.
// Each node is published by its own ExternalIP, else its InternalIP, as K3s documents (K3s's
// code lets one node's ExternalIP hide every other node), and addresses no client can use
// (0.0.0.0, loopback, multicast) are never published.
//
// Kubelet: the LB pods set net.ipv4.ip_forward (IPv4 Services) and net.ipv6.conf.all.forwarding
// (IPv6 Services), which a stock kubelet counts as unsafe sysctls and refuses. K3s's kubelet
// allows them; any other kubelet that is to run LB pods needs
// --allowed-unsafe-sysctls=net.ipv4.ip_forward,net.ipv6.conf.all.forwarding (or
// allowedUnsafeSysctls in its config file). A pod a kubelet refuses fails with reason
// SysctlForbidden, and the controller says so in a Warning Event on the Service
// (ReasonSysctlForbidden) naming the node and the flag.
//
// Security: an LB pod takes each Service port as a hostPort, so by default, as in K3s, anyone
// who may create a LoadBalancer Service can claim node ports such as the kubelet's 10250 or
// the API server's 6443 on every node an LB pod fits on. Options.ReservedHostPorts lists ports
// the controller refuses instead, with a Warning Event on the Service.
package servicelb
