// Package netpol enforces Kubernetes NetworkPolicies on one node with iptables and ipset, as
// the kube-router network policy controller embedded in K3s does, with the same chain, ipset
// and mark names (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*, KUBE-SRC-*/KUBE-DST-*) so the
// documented K3s cleanup commands keep working.
package netpol
