package compose

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k3snet/k3snet/clustercidr"
)

// Names of the roles of cmd/k3snet that no controller package ships.
const (
	// UninstallClusterRoleName names the role of what the controllers do at uninstall.
	UninstallClusterRoleName = "k3snet:uninstall"
	// NodeAnnotationsClusterRoleName names the role of the node's address annotations.
	NodeAnnotationsClusterRoleName = "k3snet:node-annotations"
	// LeaderElectionRoleName names the role of the controllers' Leases.
	LeaderElectionRoleName = "k3snet:leader-election"
	// NodeSelfRoleName names the role with which a node pod reads its own ServiceAccount.
	NodeSelfRoleName = "k3snet:node-self"
)

// UninstallGrantName names the copy of that role, and its binding, that the controllers make at
// start and that outlives `kubectl delete -k`; see EnsureUninstallGrant.
const UninstallGrantName = "k3snet:uninstall-grant"

// UninstallClusterRole returns the role of the controllers' uninstall: release the finalizers
// of k3snet's ServiceAccounts and RBAC objects, remove ServiceLB's DaemonSets and the
// finalizers of its Services and of ClusterCIDRs, wait for the node pods, and make the
// uninstall grant (creating a role needs every right it grants, which this role has).
func UninstallClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: UninstallClusterRoleName},
		Rules:      uninstallRules(),
	}
}

// NodeAnnotationsClusterRole returns the role `k3snet node` needs besides netpol's: reading
// and patching Nodes, to publish its node's addresses (ccmstub.AnnotateNode). A kubelet's own
// credential may only patch its own Node; a ServiceAccount shared by every node pod cannot be
// narrowed to one.
func NodeAnnotationsClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: NodeAnnotationsClusterRoleName},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "patch"}}},
	}
}

// LeaderElectionRole returns the role of the controllers' Leases in namespace.
func LeaderElectionRole(namespace string) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: LeaderElectionRoleName, Namespace: namespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			Verbs: []string{"get", "create", "update"}}},
	}
}

// NodeSelfRole returns the role with which the node pods read their own ServiceAccount in
// namespace at SIGTERM, to tell an uninstall from a restart.
func NodeSelfRole(namespace string) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: NodeSelfRoleName, Namespace: namespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"},
			ResourceNames: []string{NodeServiceAccount}, Verbs: []string{"get"}}},
	}
}

func uninstallRules() []rbacv1.PolicyRule {
	release := []string{"get", "list", "watch", "patch", "update"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: release},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}, Verbs: release},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles", "clusterrolebindings"},
			Verbs: append([]string{"create"}, release...)},
		// The grant is owned by the controllers' namespace.
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
		// Waiting for the node pods to have cleaned up their nodes.
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		// ServiceLB's cleanup: its DaemonSets, and the finalizers of the Services they served.
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"list", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{clustercidr.Group}, Resources: []string{clustercidr.Resource}, Verbs: []string{"get", "list", "patch"}},
	}
}

// EnsureUninstallGrant gives self the uninstall role through a ClusterRole and binding of its
// own that `kubectl delete -k` does not delete, since no manifest names them, and that the
// garbage collector removes once self's namespace is gone (their owner).
//
// Without it the uninstall could not finish: the last step releases self's ServiceAccount, and
// the binding that authorizes that request would have to be released first (taking the
// right away) or after (with an identity already deleted), so one of the two would keep its
// finalizer forever.
func EnsureUninstallGrant(ctx context.Context, client kubernetes.Interface, self ServiceAccountRef) error {
	ns, err := client.CoreV1().Namespaces().Get(ctx, self.Namespace, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading namespace %s for the uninstall grant: %w", self.Namespace, err)
	}
	meta := metav1.ObjectMeta{
		Name:            UninstallGrantName,
		Labels:          map[string]string{PartOfLabel: PartOfValue},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: ns.Name, UID: ns.UID}},
	}
	role := &rbacv1.ClusterRole{ObjectMeta: meta, Rules: uninstallRules()}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: UninstallGrantName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: self.Namespace, Name: self.Name}},
	}
	rbac := client.RbacV1()
	if err := createOrUpdate(ctx, rbac.ClusterRoles().Create, rbac.ClusterRoles().Update, role); err != nil {
		return fmt.Errorf("ClusterRole %s: %w", UninstallGrantName, err)
	}
	if err := createOrUpdate(ctx, rbac.ClusterRoleBindings().Create, rbac.ClusterRoleBindings().Update, binding); err != nil {
		return fmt.Errorf("ClusterRoleBinding %s: %w", UninstallGrantName, err)
	}
	return nil
}

// createOrUpdate creates obj, or overwrites the object of its name.
func createOrUpdate[T any](ctx context.Context, create func(context.Context, T, metav1.CreateOptions) (T, error),
	update func(context.Context, T, metav1.UpdateOptions) (T, error), obj T) error {
	_, err := create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = update(ctx, obj, metav1.UpdateOptions{})
	}
	return err
}
