package packaged

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

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
			got, _, skipped := nodeHosts("", tt.nodes, nil)
			assert.Equal(t, tt.want, got)
			if tt.wantSkipped == nil {
				tt.wantSkipped = map[string]string{}
			}
			assert.Equal(t, tt.wantSkipped, skipped)
		})
	}
}

func TestMergeNodeHosts(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	const k3d = "192.0.2.200 host.k3d.internal\n"
	tests := []struct {
		name     string
		existing string
		node     string
		addrs    []netip.Addr
		want     string
	}{
		{name: "a node is added to an empty key", node: "a", addrs: addrs("10.0.0.1"), want: "10.0.0.1 a\n"},
		{name: "a new node goes after the other lines", existing: k3d + "10.0.0.1 a\n", node: "b", addrs: addrs("10.0.0.2"), want: k3d + "10.0.0.1 a\n10.0.0.2 b\n"},
		{name: "an unchanged node leaves the key as it is", existing: k3d + "10.0.0.1 a\n" + k3d, node: "a", addrs: addrs("10.0.0.1"), want: k3d + "10.0.0.1 a\n" + k3d},
		{name: "an unchanged key without a final newline stays so", existing: "10.0.0.1 a", node: "a", addrs: addrs("10.0.0.1"), want: "10.0.0.1 a"},
		{name: "a changed address replaces the line in place", existing: k3d + "10.0.0.1 a\n10.0.0.2 b\n", node: "a", addrs: addrs("10.0.0.9"), want: k3d + "10.0.0.9 a\n10.0.0.2 b\n"},
		{name: "dual-stack gives one line per address, in the node's order", existing: k3d, node: "a", addrs: addrs("10.0.0.1", "fd00::1"), want: k3d + "10.0.0.1 a\nfd00::1 a\n"},
		{name: "a node losing one family loses that line", existing: "10.0.0.1 a\nfd00::1 a\n" + k3d, node: "a", addrs: addrs("fd00::1"), want: "fd00::1 a\n" + k3d},
		{name: "a deleted node's lines go, the others stay", existing: "10.0.0.1 a\n" + k3d + "fd00::1 a\n10.0.0.2 b\n", node: "a", want: k3d + "10.0.0.2 b\n"},
		{name: "removing the last line empties the key", existing: "10.0.0.1 a\n", node: "a", want: ""},
		{name: "removing a node without lines changes nothing", existing: k3d, node: "a", want: k3d},
		{
			name:     "foreign lines stay verbatim and in order, comments and blank lines too",
			existing: "# hand-added\n\n192.0.2.1\tfoo   bar  # note\n10.0.0.1 a\n  \n::1 localhost\n",
			node:     "a", addrs: addrs("10.0.0.3"),
			want: "# hand-added\n\n192.0.2.1\tfoo   bar  # note\n10.0.0.3 a\n  \n::1 localhost\n",
		},
		{name: "a commented-out line of the node is a comment and stays", existing: "#10.0.0.1 a\n", node: "a", addrs: addrs("10.0.0.2"), want: "#10.0.0.1 a\n10.0.0.2 a\n"},
		{name: "a line of the node with a comment is the node's", existing: "10.0.0.1 a # old\n" + k3d, node: "a", addrs: addrs("10.0.0.2"), want: "10.0.0.2 a\n" + k3d},
		{name: "duplicate lines of the node collapse into the first", existing: "10.0.0.1 a\n" + k3d + "10.0.0.1 a\n10.0.0.1  a\n", node: "a", addrs: addrs("10.0.0.1"), want: "10.0.0.1 a\n" + k3d},
		{name: "a duplicate address of the node gives one line", node: "a", addrs: addrs("10.0.0.1", "10.0.0.1"), want: "10.0.0.1 a\n"},
		{
			// K3s keys a line by its first host name: with the node's name first the line is
			// the node's and loses its aliases; with it later the line is someone else's.
			name:     "a hand-added alias line is the node's when the node's name comes first",
			existing: "10.0.0.9 a a-alias\n10.0.0.8 other a\n",
			node:     "a", addrs: addrs("10.0.0.1"),
			want: "10.0.0.1 a\n10.0.0.8 other a\n",
		},
		{name: "deleting a node removes its alias line too", existing: "10.0.0.9 a a-alias\n10.0.0.8 other a\n", node: "a", want: "10.0.0.8 other a\n"},
		{name: "a foreign line on the node's address stays", existing: "10.0.0.1 registry.local\n", node: "a", addrs: addrs("10.0.0.1"), want: "10.0.0.1 registry.local\n10.0.0.1 a\n"},
		{name: "a name that only starts like the node's is not the node's", existing: "10.0.0.5 a.example\n10.0.0.6 ab\n", node: "a", want: "10.0.0.5 a.example\n10.0.0.6 ab\n"},
		{name: "CRLF lines stay as they are", existing: "192.0.2.200 host.k3d.internal\r\n10.0.0.1 a\r\n", node: "a", addrs: addrs("10.0.0.2"), want: "192.0.2.200 host.k3d.internal\r\n10.0.0.2 a\n"},
		{name: "the empty name owns no line, not even comments", existing: "# c\n\n" + k3d, node: "", want: "# c\n\n" + k3d},
		{name: "a key without a final newline gets one when it changes", existing: "192.0.2.200 host.k3d.internal", node: "a", addrs: addrs("10.0.0.1"), want: k3d + "10.0.0.1 a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mergeNodeHosts(tt.existing, tt.node, tt.addrs))
		})
	}
}

func TestNodeHostsKeepsForeignLines(t *testing.T) {
	const k3d = "192.0.2.200 host.k3d.internal\n"
	deleting := makeNode("d", "InternalIP=10.0.0.4")
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	tests := []struct {
		name     string
		existing string
		nodes    []*corev1.Node
		written  []string
		want     string
		wantOwn  []string
	}{
		{
			name:     "nodes are merged in, in name order, after the foreign lines",
			existing: k3d,
			nodes:    []*corev1.Node{makeNode("b", "InternalIP=10.0.0.2"), makeNode("a", "InternalIP=10.0.0.1")},
			want:     k3d + "10.0.0.1 a\n10.0.0.2 b\n",
			wantOwn:  []string{"a", "b"},
		},
		{
			name:     "a node that went while the controller was away loses its lines when it was written",
			existing: "10.0.0.1 a\n" + k3d + "10.0.0.3 gone\n",
			nodes:    []*corev1.Node{makeNode("a", "InternalIP=10.0.0.1")},
			written:  []string{"a", "gone"},
			want:     "10.0.0.1 a\n" + k3d,
			wantOwn:  []string{"a"},
		},
		{
			// Nothing tells host.k3d.internal from a node deleted before anything was written.
			name:     "a line of a name neither a node nor written stays",
			existing: "10.0.0.1 a\n" + k3d + "10.0.0.3 gone\n",
			nodes:    []*corev1.Node{makeNode("a", "InternalIP=10.0.0.1")},
			written:  []string{"a"},
			want:     "10.0.0.1 a\n" + k3d + "10.0.0.3 gone\n",
			wantOwn:  []string{"a"},
		},
		{
			name:     "a node being deleted loses its lines, as in K3s",
			existing: k3d + "10.0.0.4 d\n",
			nodes:    []*corev1.Node{deleting},
			written:  []string{"d"},
			want:     k3d,
		},
		{
			name:     "a node whose address turned bad loses its lines",
			existing: k3d + "10.0.0.1 a\n",
			nodes:    []*corev1.Node{makeNode("a", "InternalIP=10.0.0.1 evil.example")},
			written:  []string{"a"},
			want:     k3d,
		},
		{
			name:     "a node without an internal address has no lines and is not written",
			existing: k3d + "10.0.0.1 a\n",
			nodes:    []*corev1.Node{makeNode("a", "ExternalIP=203.0.113.1")},
			want:     k3d,
		},
		{
			name:     "a node whose name is not a DNS name touches nothing",
			existing: k3d + "10.0.0.1 a\n",
			nodes:    []*corev1.Node{makeNode("a b", "InternalIP=10.0.0.1")},
			want:     k3d + "10.0.0.1 a\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, own, _ := nodeHosts(tt.existing, tt.nodes, tt.written)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantOwn, own)
		})
	}
}

func TestNodeHostsWrittenNodesIgnoreWhatIsNotANodeName(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		annotationNodeHostsNodes: "a,,b c,host.k3d.internal,B",
	}}}
	assert.Equal(t, []string{"a", "host.k3d.internal"}, writtenNodes(cm))
	assert.Empty(t, writtenNodes(&corev1.ConfigMap{}))
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

// TestNodeHostsCachesOnlyTheCorednsConfigMap: NodeHosts reads one ConfigMap, so it keeps no
// other ConfigMap of the cluster in memory.
func TestNodeHostsCachesOnlyTheCorednsConfigMap(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "big"}, Data: map[string]string{"x": "y"}},
	)
	ctrl := &Controller{client: client}
	n, err := ctrl.newNodeHosts(informers.NewSharedInformerFactory(client, 0))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n.configMapFactory.Start(ctx.Done())
	n.configMapFactory.WaitForCacheSync(ctx.Done())
	cached, err := n.configMaps.List(labels.Everything())
	require.NoError(t, err)
	require.Len(t, cached, 1)
	require.Equal(t, "coredns", cached[0].Name)
}
