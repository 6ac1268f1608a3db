// Package servicelb serves Services of type LoadBalancer the way K3s's ServiceLB (Klipper LB)
// does: one hostPort DaemonSet per Service in kube-system whose pods forward the Service's
// ports from every eligible node, with the Service's status.loadBalancer.ingress taken from the
// addresses of the nodes that run a ready LB pod. Node allow-lists and pools follow K3s's
// svccontroller.k3s.cattle.io labels; servicelb/forwarder is the LB pod's own dataplane.
package servicelb
