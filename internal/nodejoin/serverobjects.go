package nodejoin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// FieldManager names EnsureServerObjects in the managedFields of the objects it applies.
const FieldManager = "k3snet-nodejoin"

// managedByLabel marks the objects EnsureServerObjects keeps, so that a bootstrap token
// Secret of an earlier node token can be found and removed.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = FieldManager
)

// The bootstrap token Secret, as kube-apiserver's bootstrap-token authenticator reads it.
const (
	bootstrapTokenNamespace    = "kube-system"
	bootstrapTokenSecretPrefix = "bootstrap-token-"
	bootstrapTokenIDKey        = "token-id"
	bootstrapTokenSecretKey    = "token-secret"
	bootstrapTokenAuthUsageKey = "usage-bootstrap-authentication"
	bootstrapTokenDescKey      = "description"
)

// serverObjects are the objects EnsureServerObjects keeps, as pure values.
type serverObjects struct {
	secret              *corev1.Secret
	configMap           *corev1.ConfigMap
	role                *rbacv1.Role
	roleBinding         *rbacv1.RoleBinding
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
}

// newServerObjects computes every object EnsureServerObjects keeps for tok and cfg.
func newServerObjects(tok Token, cfg AgentConfig) (*serverObjects, error) {
	cm, err := newAgentConfigMap(cfg)
	if err != nil {
		return nil, err
	}
	return &serverObjects{
		secret:      newBootstrapTokenSecret(tok),
		configMap:   cm,
		role:        newAgentConfigRole(),
		roleBinding: newAgentConfigRoleBinding(),
		clusterRoles: []*rbacv1.ClusterRole{
			newControllerClusterRole(),
		},
		clusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			// The kubelet's TLS bootstrap, as kubeadm sets it up: a bootstrap token may
			// create CSRs, kube-controller-manager approves the kubelet client CSR such a
			// token creates, and the one a kubelet creates to renew its own certificate.
			newClusterRoleBinding(NodeBootstrapperBindingName, nodeBootstrapperRole, group(BootstrappersGroup)),
			newClusterRoleBinding(NodeAutoApproveBindingName, nodeClientRole, group(BootstrappersGroup)),
			newClusterRoleBinding(NodeAutoApproveRenewalBindingName, selfNodeClientRole, group(NodesGroup)),
			// K3s's: kube-apiserver reaches kubelets for logs and exec as this user.
			newClusterRoleBinding(KubeletAPIAdminBindingName, kubeletAPIAdminRole, user(KubeAPIServerUser)),
			newClusterRoleBinding(ControllerClusterRoleName, ControllerClusterRoleName, user(ControllerUser)),
		},
	}, nil
}

// newBootstrapTokenSecret is the Secret kube-apiserver authenticates tok's bootstrap token
// with. It has no expiration: K3s's node token stays valid until the server's CA changes.
func newBootstrapTokenSecret(tok Token) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   typeMeta(corev1.SchemeGroupVersion.String(), "Secret"),
		ObjectMeta: objectMeta(bootstrapTokenNamespace, bootstrapTokenSecretPrefix+tok.ID),
		Type:       corev1.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			bootstrapTokenIDKey:        []byte(tok.ID),
			bootstrapTokenSecretKey:    []byte(tok.Secret),
			bootstrapTokenAuthUsageKey: []byte("true"),
			bootstrapTokenDescKey:      []byte("k3snet node token: agents join the cluster with it"),
		},
	}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{managedByLabel: managedByValue}}
}

// EnsureServerObjects creates or updates what agents need to join with tok: its bootstrap
// token Secret, the RBAC for the kubelet's TLS bootstrap and for the identities agents use,
// and the ConfigMap holding cfg. It writes only objects that differ from what it wants,
// through server-side apply with FieldManager, so a second call with the same arguments
// writes nothing; fields other managers added are kept. A bootstrap token Secret of an
// earlier token is deleted: that token's CA hash is no longer the cluster's, so no agent can
// join with it, but it would still authenticate.
func EnsureServerObjects(ctx context.Context, client kubernetes.Interface, tok Token, cfg AgentConfig) error {
	want, err := newServerObjects(tok, cfg)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx)
	rbac := client.RbacV1()
	for _, cr := range want.clusterRoles {
		if err := ensure(ctx, cr, rbac.ClusterRoles().Get, rbac.ClusterRoles().Patch, func(cur, want *rbacv1.ClusterRole) bool {
			return equality.Semantic.DeepEqual(cur.Rules, want.Rules)
		}); err != nil {
			return err
		}
	}
	for _, crb := range want.clusterRoleBindings {
		if err := ensure(ctx, crb, rbac.ClusterRoleBindings().Get, rbac.ClusterRoleBindings().Patch, func(cur, want *rbacv1.ClusterRoleBinding) bool {
			return cur.RoleRef == want.RoleRef && equality.Semantic.DeepEqual(cur.Subjects, want.Subjects)
		}); err != nil {
			return err
		}
	}
	roles := rbac.Roles(AgentConfigNamespace)
	if err := ensure(ctx, want.role, roles.Get, roles.Patch, func(cur, want *rbacv1.Role) bool {
		return equality.Semantic.DeepEqual(cur.Rules, want.Rules)
	}); err != nil {
		return err
	}
	bindings := rbac.RoleBindings(AgentConfigNamespace)
	if err := ensure(ctx, want.roleBinding, bindings.Get, bindings.Patch, func(cur, want *rbacv1.RoleBinding) bool {
		return cur.RoleRef == want.RoleRef && equality.Semantic.DeepEqual(cur.Subjects, want.Subjects)
	}); err != nil {
		return err
	}
	configMaps := client.CoreV1().ConfigMaps(AgentConfigNamespace)
	if err := ensure(ctx, want.configMap, configMaps.Get, configMaps.Patch, func(cur, want *corev1.ConfigMap) bool {
		return maps.Equal(want.Data, filterKeys(cur.Data, want.Data))
	}); err != nil {
		return err
	}
	secrets := client.CoreV1().Secrets(bootstrapTokenNamespace)
	if err := ensure(ctx, want.secret, secrets.Get, secrets.Patch, func(cur, want *corev1.Secret) bool {
		return cur.Type == want.Type && maps.EqualFunc(want.Data, filterKeys(cur.Data, want.Data), bytes.Equal)
	}); err != nil {
		return err
	}
	if err := deleteStaleTokens(ctx, client, want.secret.Name); err != nil {
		return err
	}
	logger.V(2).Info("Node join objects are in place", "tokenID", tok.ID)
	return nil
}

// object is what ensure needs of a typed API object.
type object interface {
	metav1.Object
	runtime.Object
}

// ensure applies want unless the live object has its labels and upToDate says the rest
// matches. get and patch are the typed client's methods for want's kind.
func ensure[T object](ctx context.Context, want T,
	get func(context.Context, string, metav1.GetOptions) (T, error),
	patch func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (T, error),
	upToDate func(cur, want T) bool,
) error {
	kind := want.GetObjectKind().GroupVersionKind().Kind
	ref := klog.KObj(want)
	cur, err := get(ctx, want.GetName(), metav1.GetOptions{})
	switch {
	case err == nil:
		if hasLabels(cur.GetLabels(), want.GetLabels()) && upToDate(cur, want) {
			return nil
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading %s %s: %w", kind, ref, err)
	}
	body, err := json.Marshal(want)
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", kind, ref, err)
	}
	if _, err := patch(ctx, want.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: new(true)}); err != nil {
		return fmt.Errorf("applying %s %s: %w", kind, ref, err)
	}
	klog.FromContext(ctx).V(2).Info("Applied node join object", "kind", kind, "object", ref)
	return nil
}

// deleteStaleTokens deletes the bootstrap token Secrets EnsureServerObjects created for
// earlier tokens, all but keep.
func deleteStaleTokens(ctx context.Context, client kubernetes.Interface, keep string) error {
	secrets := client.CoreV1().Secrets(bootstrapTokenNamespace)
	list, err := secrets.List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{managedByLabel: managedByValue}).String(),
	})
	if err != nil {
		return fmt.Errorf("listing bootstrap token Secrets: %w", err)
	}
	for _, s := range list.Items {
		if s.Name == keep || s.Type != corev1.SecretTypeBootstrapToken {
			continue
		}
		err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the bootstrap token Secret %s of an earlier node token: %w", s.Name, err)
		}
		klog.FromContext(ctx).Info("Deleted the bootstrap token of an earlier node token", "secret", klog.KObj(&s))
	}
	return nil
}

// hasLabels reports whether got carries every label of want.
func hasLabels(got, want map[string]string) bool {
	for k, v := range want {
		if cur, ok := got[k]; !ok || cur != v {
			return false
		}
	}
	return true
}

// filterKeys returns the entries of m whose keys are in keys: the part of a live object's
// data that EnsureServerObjects owns.
func filterKeys[V any](m map[string]V, keys map[string]V) map[string]V {
	out := make(map[string]V, len(keys))
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
