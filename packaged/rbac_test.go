package packaged

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// roleConfig binds a copy of ClusterRole to a new user and returns a config that
// impersonates that user, once the API server's RBAC cache has seen the binding.
func roleConfig(t *testing.T, c *testcluster.Cluster) *rest.Config {
	t.Helper()
	user := testcluster.UniqueName("packaged-rbac")
	role := ClusterRole()
	role.Name = user
	_, err := c.Client.RbacV1().ClusterRoles().Create(t.Context(), role, metav1.CreateOptions{})
	require.NoError(t, err)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	_, err = c.Client.RbacV1().ClusterRoleBindings().Create(t.Context(), binding, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), user, metav1.DeleteOptions{})
		_ = c.Client.RbacV1().ClusterRoles().Delete(context.Background(), user, metav1.DeleteOptions{})
	})
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		// RBAC caches in the API server take a moment to see the new binding.
		_, err := client.CoreV1().ConfigMaps("kube-system").List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
	require.NoError(t, err)
	return cfg
}

func TestClusterRoleIsEnoughToDeploy(t *testing.T) {
	c := cluster.Get(t)
	cfg := roleConfig(t, c)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	dir := t.TempDir()
	name := testcluster.UniqueName("rbac")
	h := &harness{dir: dir}
	h.write(t, name+".yaml", configMap(name, "1"))
	ctrl, err := New(client, Options{ManifestsDir: dir, Dynamic: dyn})
	require.NoError(t, err)
	require.NoError(t, ctrl.applier.installCRDs(testContext(t)))
	_, err = ctrl.pass(testContext(t))
	require.NoError(t, err)
	_, err = c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
}

func TestClusterRoleIsEnoughForTheHelmController(t *testing.T) {
	c := cluster.Get(t)
	newHarness(t, c, t.TempDir(), nil) // installs the helm.cattle.io CRDs
	cfg := roleConfig(t, c)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	ctrl, err := NewHelmController(client, HelmOptions{Config: cfg})
	require.NoError(t, err)
	// Its watches, the Secret metadata one included, sync only if the role allows list
	// and watch; a forbidden list keeps a cache from ever syncing.
	ctx, cancel := context.WithTimeout(testContext(t), testcluster.WaitTimeout)
	defer cancel()
	require.NoError(t, ctrl.startInformers(ctx, nil))
}
