package packaged

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterRoleName is the name of the ClusterRole that ClusterRole returns.
const ClusterRoleName = "k3snet:packaged"

// ClusterRole returns the ClusterRole the Controller needs. The deploy controller applies
// whatever an administrator drops into the manifests directory (ClusterRoles, CRDs,
// webhooks, any custom resource), and creating RBAC objects requires holding what they
// grant, so its role is necessarily every verb on every resource: the same trust K3s gives
// its supervisor, which runs the deploy controller as cluster admin. Keep the manifests
// directory writable by root only (Stage makes it 0700 and its files 0600).
func ClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName},
		Rules: []rbacv1.PolicyRule{
			// Applied manifests are arbitrary; this also covers what the package
			// itself does: CRDs (install, wait for Established), Addons (get, list,
			// create, update, delete), pruning (list, delete by label), Events (create, patch), and
			// NodeHosts (list and watch Nodes and ConfigMaps, apply ConfigMap coredns).
			// The HelmController needs it too (charts install arbitrary objects): besides
			// HelmCharts and release records it lists and watches Secrets' metadata and
			// gets values Secrets, authSecrets and repoCAConfigMaps.
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
		},
	}
}
