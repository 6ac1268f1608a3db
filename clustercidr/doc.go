// Package clustercidr allocates pod CIDRs to Nodes from the cluster CIDR and, as K3s's
// --multi-cluster-cidr does, from ClusterCIDR objects that select nodes by label, each
// handing out blocks of perNodeHostBits per IP family.
package clustercidr
