package clustercidr

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterRoleName is the name of the ClusterRole that ClusterRole returns.
const ClusterRoleName = "k3snet:clustercidr"

// crdName is the name of the ClusterCIDR CustomResourceDefinition.
const crdName = Resource + "." + Group

// ClusterRole returns the least-privilege ClusterRole the Controller needs. It never creates,
// updates or deletes a Node; it only patches spec.podCIDRs. The ClusterCIDR and CRD rules are
// only used with MultiClusterCIDR; a deployment without it may drop them. Leader election
// (package leader) needs Leases in its namespace, granted by a Role there.
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName},
		Rules: []rbacv1.PolicyRule{
			// The shared informer lists and watches Nodes; assign patches spec.podCIDRs and
			// re-reads a Node with get after a resourceVersion conflict.
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "patch"}},
			// The event broadcaster creates Events and patches their counts when they repeat.
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			// The dynamic informer lists and watches ClusterCIDRs; default-cluster-cidr is
			// created once; finalizers are patched.
			{APIGroups: []string{Group}, Resources: []string{Resource}, Verbs: []string{"list", "watch", "create", "patch"}},
			// installCRD applies the CRD (a server-side apply that may create it) and reads its
			// Established condition; only this CRD may be read or changed.
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"create"}},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, ResourceNames: []string{crdName}, Verbs: []string{"get", "patch"}},
		},
	}
}
