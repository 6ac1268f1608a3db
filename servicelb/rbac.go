package servicelb

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterRoleName is the name ClusterRole gives the role.
const ClusterRoleName = "k3snet:servicelb-controller"

// ClusterRole returns the least-privilege role the Controller and Cleanup need, for a binding
// to the identity their client uses. It is narrower than K3s's k3s-cloud-controller-manager
// role, which also serves the CCM's node controllers: no nodes writes, no
// daemonsets "*", no leases, and read access to pods, DaemonSets and EndpointSlices only.
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName},
		Rules: []rbacv1.PolicyRule{
			// The Services it serves: finalizers through patch.
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"services/status"}, Verbs: []string{"patch"}},
			// Allow-list mode, pools and the published addresses.
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}},
			// The LB pods, for status and placement; only those in the LB namespace are watched.
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
			// Ensured at start, read first.
			{APIGroups: []string{""}, Resources: []string{"namespaces", "serviceaccounts"}, Verbs: []string{"get", "create"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			// Server-side apply of a new object is authorized as create as well as patch.
			{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"list", "watch", "create", "patch", "delete"}},
			// ETP Local: nodes with ready endpoints.
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
}
