// Package alphaapi serves ClusterCIDR as networking.k8s.io/v1alpha1, the API version K3s's
// documentation writes, through kube-apiserver's aggregation layer: Kubernetes removed that
// version in 1.29 and a CustomResourceDefinition cannot claim the networking.k8s.io group.
//
// The server keeps no state. Every request is replayed against the networking.x-k8s.io/v1
// ClusterCIDR custom resource, the one the clustercidr controller reads, impersonating the
// user kube-apiserver authenticated (its front-proxy headers), so the custom resource's RBAC
// decides what that user may do. Only apiVersion differs between the two views: bodies are
// rewritten both ways, errors name clustercidrs.networking.k8s.io.
package alphaapi
