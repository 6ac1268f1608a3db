package packaged

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"

	"github.com/k3snet/k3snet/internal/testcluster"
)

// makeNode builds a Node with addresses given as type=address pairs.
func makeNode(name string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		typ, addr, _ := strings.Cut(a, "=")
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeAddressType(typ), Address: addr})
	}
	return n
}

func TestNodeHosts(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*corev1.Node
		want  string
	}{
		{name: "no nodes give an empty key", nodes: nil, want: ""},
		{
			name:  "one line per internal address, nodes sorted by name",
			nodes: []*corev1.Node{makeNode("b", "InternalIP=10.0.0.2"), makeNode("a", "InternalIP=10.0.0.1", "InternalIP=fd00::1")},
			want:  "10.0.0.1 a\nfd00::1 a\n10.0.0.2 b\n",
		},
		{
			name:  "external addresses and hostnames are not listed",
			nodes: []*corev1.Node{makeNode("a", "ExternalIP=203.0.113.1", "Hostname=a", "InternalIP=10.0.0.1")},
			want:  "10.0.0.1 a\n",
		},
		{name: "a node without an internal address has no line", nodes: []*corev1.Node{makeNode("a", "ExternalIP=203.0.113.1")}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, nodeHosts(tt.nodes))
		})
	}
}

func TestStartKeepsNodeHostsAndAppliesFilesAsTheyAppear(t *testing.T) {
	c := cluster.Get(t)
	dir := t.TempDir()
	_, err := c.Client.CoreV1().ConfigMaps("kube-system").Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	require.NoError(t, err)
	ctrl, err := New(c.Client, Options{ManifestsDir: dir, Dynamic: dyn, Interval: 30 * time.Minute})
	require.NoError(t, err)
	require.NoError(t, ctrl.Start(testContext(t), informers.NewSharedInformerFactory(c.Client, 0)))

	name := testcluster.UniqueName("watched")
	h := &harness{dir: dir}
	h.write(t, name+".yaml", configMap(name, "1"))
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	require.NoError(t, err, "a new file is applied on its file event, long before the periodic pass")

	node := testcluster.UniqueName("hosts")
	c.AddNodes(t, testcluster.Node(node, testcluster.Unmanaged(), testcluster.InternalIP("192.0.2.77")))
	line := "192.0.2.77 " + node + "\n"
	waitNodeHosts := func(present bool) {
		t.Helper()
		err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
			cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return strings.Contains(cm.Data[nodeHostsKey], line) == present, nil
		})
		require.NoError(t, err, "NodeHosts should have %q: %v", line, present)
	}
	waitNodeHosts(true)
	require.NoError(t, c.Client.CoreV1().Nodes().Delete(t.Context(), node, metav1.DeleteOptions{}))
	waitNodeHosts(false)
}
