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
	"k8s.io/apimachinery/pkg/fields"
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
		name        string
		nodes       []*corev1.Node
		want        string
		wantSkipped map[string]string
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
		{
			name:  "addresses are written in canonical form",
			nodes: []*corev1.Node{makeNode("a", "InternalIP=FD00:0::1")},
			want:  "fd00::1 a\n",
		},
		{
			name: "an InternalIP carrying more names and lines leaves its node out, and only it",
			nodes: []*corev1.Node{
				makeNode("evil", "InternalIP=10.0.0.66 registry-1.docker.io github.com\n10.0.0.66"),
				makeNode("good", "InternalIP=10.0.0.2"),
			},
			want:        "10.0.0.2 good\n",
			wantSkipped: map[string]string{"evil": `InternalIP "10.0.0.66 registry-1.docker.io github.com\n10.0.0.66" is not an IP address`},
		},
		{
			name:        "one bad address leaves out the node's good ones too",
			nodes:       []*corev1.Node{makeNode("a", "InternalIP=10.0.0.1", "InternalIP=not-an-ip")},
			want:        "",
			wantSkipped: map[string]string{"a": `InternalIP "not-an-ip" is not an IP address`},
		},
		{
			name:        "a zone, which may hold any text, is refused",
			nodes:       []*corev1.Node{makeNode("a", "InternalIP=fe80::1%eth0 evil.example")},
			want:        "",
			wantSkipped: map[string]string{"a": `InternalIP "fe80::1%eth0 evil.example" is not an IP address`},
		},
		{
			name:        "a node name that is not a DNS name is refused",
			nodes:       []*corev1.Node{makeNode("a b", "InternalIP=10.0.0.1")},
			want:        "",
			wantSkipped: map[string]string{"a b": `node name "a b" is not a DNS name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := nodeHosts(tt.nodes)
			assert.Equal(t, tt.want, got)
			if tt.wantSkipped == nil {
				tt.wantSkipped = map[string]string{}
			}
			assert.Equal(t, tt.wantSkipped, skipped)
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

	// A node whose InternalIP carries more names: left out, with a Warning on the Node.
	evil := testcluster.UniqueName("evil")
	c.AddNodes(t, testcluster.Node(evil, testcluster.Unmanaged(), testcluster.InternalIP("192.0.2.66 registry-1.docker.io github.com\n192.0.2.66")))
	err = c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		events, err := c.Client.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.kind": "Node", "involvedObject.name": evil, "reason": ReasonNodeHostsSkipped, "type": corev1.EventTypeWarning,
		}.String()})
		return err == nil && len(events.Items) > 0, err
	})
	require.NoError(t, err, "a Warning Event on the Node says why it is left out")
	cm, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "coredns", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, cm.Data[nodeHostsKey], "docker.io")
	assert.NotContains(t, cm.Data[nodeHostsKey], evil)
	assert.Contains(t, cm.Data[nodeHostsKey], line, "the other nodes stay")

	require.NoError(t, c.Client.CoreV1().Nodes().Delete(t.Context(), node, metav1.DeleteOptions{}))
	waitNodeHosts(false)
}
