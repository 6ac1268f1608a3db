package ccmstub

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterRoleName is the name of the ClusterRole that ClusterRole returns.
const ClusterRoleName = "k3snet:ccmstub"

// ClusterRole returns the least-privilege ClusterRole the node part of the Controller needs:
// list, watch and patch Nodes, patch their status, and record Events. K3s's own role
// (k3s-cloud-controller-manager) grants nodes "*" and covers ServiceLB too; here the
// hosted load balancer brings its own role from its package (servicelb), and the stub never
// creates, updates or deletes a Node.
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName},
		Rules: []rbacv1.PolicyRule{
			// The shared informer lists and watches Nodes (sync reads only from its cache);
			// patchNode writes labels, providerID and taints.
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch", "patch"}},
			// updateAddresses writes status.addresses through the status subresource.
			{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
			// The event broadcaster creates Events and patches their counts when they repeat.
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
}
