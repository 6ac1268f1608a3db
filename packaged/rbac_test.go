package packaged

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/k3snet/k3snet/internal/testcluster"
	"github.com/k3snet/k3snet/packaged/helm"
)

func TestClusterRoleIsEnoughToDeploy(t *testing.T) {
	c := cluster.Get(t)
	cfg := c.ImpersonateRole(t, testcluster.UniqueName("packaged-rbac"), ClusterRole())
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
	cfg := c.ImpersonateRole(t, testcluster.UniqueName("packaged-rbac"), ClusterRole())
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	ctrl, err := helm.New(client, helm.Options{Config: cfg})
	require.NoError(t, err)
	// Start installs the CRDs and waits for its watches, the Secret metadata one included:
	// they sync only if the role allows list and watch, and a forbidden list keeps a cache
	// from ever syncing.
	ctx, cancel := context.WithTimeout(testContext(t), testcluster.WaitTimeout)
	defer cancel()
	require.NoError(t, ctrl.Start(ctx, nil))
}
