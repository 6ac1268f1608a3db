package ccmstub

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func ips(s ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(s))
	for _, v := range s {
		out = append(out, netip.MustParseAddr(v))
	}
	return out
}

// nodeConfig builds the NodeConfig of node "a" with one internal IP, plus tweaks.
func nodeConfig(tweaks ...func(*NodeConfig)) NodeConfig {
	c := NodeConfig{Name: "a", InternalIPs: ips("10.0.0.1"), Hostname: "host-a"}
	for _, tweak := range tweaks {
		tweak(&c)
	}
	return c
}

func TestAgentPatch(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
		cfg  NodeConfig
		want map[string]any // nil: nothing to write
	}{
		{
			name: "a fresh node gets internal-ip and hostname",
			node: makeNode("a"),
			cfg:  nodeConfig(),
			want: map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				"k3s.io/internal-ip": "10.0.0.1", "k3s.io/hostname": "host-a"}}},
		},
		{
			name: "every address kind is written, dual stack as comma lists",
			node: makeNode("a"),
			cfg: nodeConfig(func(c *NodeConfig) {
				c.InternalIPs = ips("10.0.0.1", "fd00::1")
				c.ExternalIPs = ips("2001:db8::7", "203.0.113.7")
				c.InternalDNS = []string{"a.internal"}
				c.ExternalDNS = []string{"a.example.com", "b.example.com"}
			}),
			want: map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				"k3s.io/internal-ip":  "10.0.0.1,fd00::1",
				"k3s.io/external-ip":  "2001:db8::7,203.0.113.7",
				"k3s.io/internal-dns": "a.internal",
				"k3s.io/external-dns": "a.example.com,b.example.com",
				"k3s.io/hostname":     "host-a"}}},
		},
		{
			name: "an up-to-date node needs no write",
			node: makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1", "k3s.io/hostname", "host-a", "other", "kept")),
			cfg:  nodeConfig(),
		},
		{
			name: "a dropped --node-external-ip removes external-ip, which K3s keeps (#10037)",
			node: makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1", "k3s.io/hostname", "host-a",
				"k3s.io/external-ip", "203.0.113.7", "k3s.io/external-dns", "a.example.com")),
			cfg: nodeConfig(),
			want: map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				"k3s.io/external-ip": nil, "k3s.io/external-dns": nil}}},
		},
		{
			name: "a host called localhost is annotated with the node name, as K3s does",
			node: makeNode("a"),
			cfg:  nodeConfig(func(c *NodeConfig) { c.Hostname = "localhost.localdomain" }),
			want: map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				"k3s.io/internal-ip": "10.0.0.1", "k3s.io/hostname": "a"}}},
		},
		{
			name: "with the cloud controller disabled all annotations and legacy labels go",
			node: makeNode("a",
				annotated("k3s.io/internal-ip", "10.0.0.1", "k3s.io/external-ip", "203.0.113.7", "k3s.io/hostname", "host-a", "other", "kept"),
				labelled("k3s.io/internal-ip", "10.0.0.1", "k3s.io/hostname", "host-a", "k3s.io/external-ip", "203.0.113.7", "other", "kept")),
			cfg: nodeConfig(func(c *NodeConfig) { c.DisableCloudController = true }),
			want: map[string]any{"metadata": map[string]any{
				"annotations": map[string]any{"k3s.io/internal-ip": nil, "k3s.io/external-ip": nil, "k3s.io/hostname": nil},
				"labels":      map[string]any{"k3s.io/internal-ip": nil, "k3s.io/external-ip": nil, "k3s.io/hostname": nil},
			}},
		},
		{
			name: "with the cloud controller disabled a clean node needs no write",
			node: makeNode("a", annotated("other", "kept")),
			cfg:  nodeConfig(func(c *NodeConfig) { c.DisableCloudController = true; c.InternalIPs = nil }),
		},
		{
			name: "legacy labels are refreshed on old nodes, with the first IP a label can hold",
			node: makeNode("a",
				annotated("k3s.io/internal-ip", "fd00::1,10.0.0.1", "k3s.io/hostname", "host-a", "k3s.io/external-ip", "203.0.113.7"),
				labelled("k3s.io/hostname", "old-host", "k3s.io/external-ip", "203.0.113.1")),
			cfg: nodeConfig(func(c *NodeConfig) {
				c.InternalIPs = ips("fd00::1", "10.0.0.1")
				c.ExternalIPs = ips("203.0.113.7")
			}),
			want: map[string]any{"metadata": map[string]any{"labels": map[string]any{
				"k3s.io/internal-ip": "10.0.0.1", "k3s.io/hostname": "host-a", "k3s.io/external-ip": "203.0.113.7"}}},
		},
		{
			name: "legacy labels are not added to nodes that never had them",
			node: makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1", "k3s.io/hostname", "host-a")),
			cfg:  nodeConfig(),
		},
		{
			name: "rke2 writes rke2.io keys",
			node: makeNode("a"),
			cfg:  nodeConfig(func(c *NodeConfig) { c.Program = "rke2" }),
			want: map[string]any{"metadata": map[string]any{"annotations": map[string]any{
				"rke2.io/internal-ip": "10.0.0.1", "rke2.io/hostname": "host-a"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.cfg.Validate())
			got := agentPatch(tt.node, tt.cfg, NewKeys(tt.cfg.Program))
			if tt.want == nil {
				assert.Nil(t, got)
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNodeConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     NodeConfig
		wantErr []string
	}{
		{name: "no name", cfg: nodeConfig(func(c *NodeConfig) { c.Name = "" }), wantErr: []string{`node name ""`}},
		{name: "no internal IP with the cloud controller on", cfg: nodeConfig(func(c *NodeConfig) { c.InternalIPs = nil }),
			wantErr: []string{"no internal IPs"}},
		{name: "a zero IP", cfg: nodeConfig(func(c *NodeConfig) { c.ExternalIPs = []netip.Addr{{}} }), wantErr: []string{"the zero address"}},
		{name: "unusable internal and external IPs",
			cfg: nodeConfig(func(c *NodeConfig) {
				c.InternalIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
				c.ExternalIPs = []netip.Addr{netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("ff02::1")}
			}),
			wantErr: []string{`"127.0.0.1" is a loopback address`, `"0.0.0.0" is the unspecified address`, `"ff02::1" is a multicast address`}},
		{name: "a bad DNS name and a bad program together",
			cfg:     nodeConfig(func(c *NodeConfig) { c.InternalDNS = []string{"a_b"}; c.Program = "K3S" }),
			wantErr: []string{`"a_b" is not a DNS name`, `program "K3S"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
}

func TestAnnotateNodeWritesOnlyWhatDiffers(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset(makeNode("a", annotated("k3s.io/external-ip", "203.0.113.7")))

	require.NoError(t, AnnotateNode(ctx, client, nodeConfig()))
	n, err := client.CoreV1().Nodes().Get(ctx, "a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k3s.io/internal-ip": "10.0.0.1", "k3s.io/hostname": "host-a"}, n.Annotations)

	client.ClearActions()
	require.NoError(t, AnnotateNode(ctx, client, nodeConfig()))
	for _, a := range client.Actions() {
		assert.Equal(t, "get", a.GetVerb(), "an up-to-date node must not be written")
	}

	err = AnnotateNode(ctx, client, nodeConfig(func(c *NodeConfig) { c.Name = "missing" }))
	require.ErrorContains(t, err, `reading node missing`)
}
