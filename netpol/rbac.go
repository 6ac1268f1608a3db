package netpol

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterRoleName is the name ClusterRole gives the role.
const ClusterRoleName = "k3snet:netpol-controller"

// ClusterRole returns the least-privilege role the Controller needs, for a binding to the
// identity its client uses: it only reads, cluster-wide, what Compile reads (peers may run on
// any node), and writes nothing but Events. K3s runs kube-router with its
// controller kubeconfig, which can do far more.
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName},
		Rules: []rbacv1.PolicyRule{
			// Pods and namespaces of the whole cluster for selectors; nodes for the own Node's
			// spec.podCIDRs (an informer on the shared factory lists them all).
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
			// Warning Events on invalid NetworkPolicies; the recorder patches repeated ones.
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
}
