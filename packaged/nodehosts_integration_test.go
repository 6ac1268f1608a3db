package packaged

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/retry"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// TestNodeHostsKeepsHandAddedLinesAcrossNodeChangesAndRestarts edits NodeHosts as k3d does
// (a host.k3d.internal line added with a plain update) and checks that the line survives
// every node change and a restart of the controller, while the nodes' lines follow the nodes.
func TestNodeHostsKeepsHandAddedLinesAcrossNodeChangesAndRestarts(t *testing.T) {
	c := cluster.Get(t)
	cms := c.Client.CoreV1().ConfigMaps("kube-system")
	_, err := cms.Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	const k3dLine = "192.0.2.200 host.k3d.internal"
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(t.Context(), "coredns", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[nodeHostsKey] += k3dLine + "\n"
		_, err = cms.Update(t.Context(), cm, metav1.UpdateOptions{FieldManager: "k3d"})
		return err
	}))

	start := func() context.CancelFunc {
		t.Helper()
		ctx, cancel := context.WithCancel(testContext(t))
		t.Cleanup(cancel)
		dyn, err := dynamic.NewForConfig(c.Config)
		require.NoError(t, err)
		ctrl, err := New(c.Client, Options{ManifestsDir: t.TempDir(), Dynamic: dyn})
		require.NoError(t, err)
		require.NoError(t, ctrl.Start(ctx, informers.NewSharedInformerFactory(c.Client, 0)))
		return cancel
	}
	// waitHosts waits until NodeHosts has every line of with and none of without, and the
	// hand-added line exactly once.
	waitHosts := func(msg string, with, without []string) {
		t.Helper()
		var hosts string
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			hosts = cm.Data[nodeHostsKey]
			lines := strings.Split(hosts, "\n")
			for _, l := range with {
				if !slices.Contains(lines, l) {
					return false, nil
				}
			}
			for _, l := range without {
				if slices.Contains(lines, l) {
					return false, nil
				}
			}
			return len(slices.DeleteFunc(lines, func(l string) bool { return l != k3dLine })) == 1, nil
		})
		require.NoError(t, err, "%s: NodeHosts should have %q and not %q, has:\n%s", msg, with, without, hosts)
	}

	stop := start()
	n1 := testcluster.UniqueName("hosts")
	c.AddNodes(t, testcluster.Node(n1, testcluster.Unmanaged(), testcluster.InternalIP("192.0.2.81")))
	waitHosts("node added", []string{"192.0.2.81 " + n1}, nil)

	c.SetNodeAddresses(t, n1,
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.0.2.82"},
		corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::82"})
	waitHosts("address changed, IPv6 added", []string{"192.0.2.82 " + n1, "fd00::82 " + n1}, []string{"192.0.2.81 " + n1})

	n2 := testcluster.UniqueName("hosts")
	c.AddNodes(t, testcluster.Node(n2, testcluster.Unmanaged(), testcluster.InternalIP("192.0.2.83")))
	waitHosts("second node added", []string{"192.0.2.82 " + n1, "192.0.2.83 " + n2}, nil)
	require.NoError(t, c.Client.CoreV1().Nodes().Delete(t.Context(), n2, metav1.DeleteOptions{}))
	waitHosts("second node deleted", []string{"192.0.2.82 " + n1, "fd00::82 " + n1}, []string{"192.0.2.83 " + n2})

	// While no controller runs, n1 goes and n3 comes: the restarted controller removes n1's
	// lines, which it had written, adds n3's and still keeps the hand-added line.
	stop()
	require.NoError(t, c.Client.CoreV1().Nodes().Delete(t.Context(), n1, metav1.DeleteOptions{}))
	n3 := testcluster.UniqueName("hosts")
	c.AddNodes(t, testcluster.Node(n3, testcluster.Unmanaged(), testcluster.InternalIP("192.0.2.84")))
	start()
	waitHosts("restarted", []string{"192.0.2.84 " + n3}, []string{"192.0.2.82 " + n1, "fd00::82 " + n1})

	cm, err := cms.Get(t.Context(), "coredns", metav1.GetOptions{})
	require.NoError(t, err)
	written := strings.Split(cm.Annotations[annotationNodeHostsNodes], ",")
	assert.Contains(t, written, n3)
	assert.NotContains(t, written, n1)
	assert.NotContains(t, written, "host.k3d.internal")
}
