package podnet

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestConflist(t *testing.T) {
	out, err := Conflist(prefixes("10.42.1.0/24", "fd00:42:0:1::/64"), "/data/agent/cni/networks")
	require.NoError(t, err)
	var got conflist
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got.Plugins, 2)
	bridge := got.Plugins[0]
	assert.Equal(t, "bridge", bridge.Type)
	assert.Equal(t, "cni0", bridge.Bridge)
	assert.True(t, bridge.IsGateway)
	assert.True(t, bridge.HairpinMode, "a pod reaches itself through its Service")
	require.NotNil(t, bridge.IPMasq)
	assert.False(t, *bridge.IPMasq, "pod addresses must survive across nodes; the node masquerades only traffic leaving the cluster")
	assert.Equal(t, [][]ipamRange{{{Subnet: "10.42.1.0/24"}}, {{Subnet: "fd00:42:0:1::/64"}}}, bridge.IPAM.Ranges)
	assert.Equal(t, []ipamRoute{{Dst: "0.0.0.0/0"}, {Dst: "::/0"}}, bridge.IPAM.Routes)
	assert.Equal(t, "/data/agent/cni/networks", bridge.IPAM.DataDir)
	assert.Equal(t, "portmap", got.Plugins[1].Type)
	assert.True(t, got.Plugins[1].Capabilities["portMappings"], "hostPorts (ServiceLB's pods) need portmap")

	_, err = Conflist(nil, "")
	assert.ErrorContains(t, err, "no pod CIDR")
	_, err = Conflist(prefixes("10.42.1.7/24"), "")
	assert.ErrorContains(t, err, "not a network address")
}

func TestDesiredRoutes(t *testing.T) {
	tests := []struct {
		name  string
		nodes []nodeInfo
		want  []string
	}{
		{
			name: "every other node's pod CIDR goes through its address, not our own",
			nodes: []nodeInfo{
				{name: "self", podCIDRs: prefixes("10.42.0.0/24"), internalIPs: addrs("172.20.0.2")},
				{name: "b", podCIDRs: prefixes("10.42.2.0/24"), internalIPs: addrs("172.20.0.4")},
				{name: "a", podCIDRs: prefixes("10.42.1.0/24"), internalIPs: addrs("172.20.0.3")},
			},
			want: []string{"10.42.1.0/24 via 172.20.0.3", "10.42.2.0/24 via 172.20.0.4"},
		},
		{
			name: "dual-stack: each family through the address of that family",
			nodes: []nodeInfo{{name: "a", podCIDRs: prefixes("fd00:42:0:1::/64", "10.42.1.0/24"),
				internalIPs: addrs("fd00::3", "172.20.0.3")}},
			want: []string{"10.42.1.0/24 via 172.20.0.3", "fd00:42:0:1::/64 via fd00::3"},
		},
		{
			name:  "a node without pod CIDRs or without an address of the family gets no route",
			nodes: []nodeInfo{{name: "a", internalIPs: addrs("172.20.0.3")}, {name: "b", podCIDRs: prefixes("fd00:42::/64"), internalIPs: addrs("172.20.0.4")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range desiredRoutes("self", tt.nodes) {
				got = append(got, r.String())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRouteDiffReplacesAMovedGatewayAndDropsGoneNodes(t *testing.T) {
	have := []route{{prefixes("10.42.1.0/24")[0], addrs("172.20.0.3")[0]}, {prefixes("10.42.9.0/24")[0], addrs("172.20.0.9")[0]}}
	want := []route{{prefixes("10.42.1.0/24")[0], addrs("172.20.0.33")[0]}, {prefixes("10.42.2.0/24")[0], addrs("172.20.0.4")[0]}}
	add, del := routeDiff(have, want)
	assert.Equal(t, want, add)
	assert.Equal(t, have[1:], del, "a changed gateway is replaced in place, not deleted")
}

func TestParseRoutes(t *testing.T) {
	routes, err := parseRoutes([]byte(`[{"dst":"10.42.1.0/24","gateway":"172.20.0.3","dev":"eth0","protocol":"97","flags":[]},{"dst":"10.9.9.9","gateway":"172.20.0.4"}]`))
	require.NoError(t, err)
	assert.Equal(t, []route{{prefixes("10.42.1.0/24")[0], addrs("172.20.0.3")[0]}, {prefixes("10.9.9.9/32")[0], addrs("172.20.0.4")[0]}}, routes)
	routes, err = parseRoutes([]byte("\n"))
	require.NoError(t, err)
	assert.Empty(t, routes)
}

func TestMasqueradeRules(t *testing.T) {
	ranges := podRangesOf(prefixes("10.42.1.0/24", "10.42.0.0/16", "10.247.0.0/24", "fd00:42::/56", "10.42.0.0/16"))
	assert.Equal(t, prefixes("10.42.0.0/16", "10.247.0.0/24", "fd00:42::/56"), ranges,
		"node CIDRs inside --cluster-cidr add nothing; a ClusterCIDR's range outside it does")
	assert.Equal(t, []string{
		"-A FLANNEL-POSTRTG -s 10.42.1.0/24 -d 10.42.0.0/16 -j RETURN",
		"-A FLANNEL-POSTRTG -s 10.42.1.0/24 -d 10.247.0.0/24 -j RETURN",
		"-A FLANNEL-POSTRTG -s 10.42.1.0/24 -d 224.0.0.0/4 -j RETURN",
		"-A FLANNEL-POSTRTG -s 10.42.1.0/24 -j MASQUERADE --random-fully",
	}, natRules(prefixes("10.42.1.0/24", "fd00:42:0:1::/64"), ranges, false))
	assert.Equal(t, []string{
		"-A FLANNEL-POSTRTG -s fd00:42:0:1::/64 -d fd00:42::/56 -j RETURN",
		"-A FLANNEL-POSTRTG -s fd00:42:0:1::/64 -d ff00::/8 -j RETURN",
		"-A FLANNEL-POSTRTG -s fd00:42:0:1::/64 -j MASQUERADE --random-fully",
	}, natRules(prefixes("10.42.1.0/24", "fd00:42:0:1::/64"), ranges, true))
	assert.Equal(t, []string{"-A FLANNEL-FWD -s fd00:42::/56 -j ACCEPT", "-A FLANNEL-FWD -d fd00:42::/56 -j ACCEPT"}, forwardRules(ranges, true))
	assert.Equal(t, "*nat\n:FLANNEL-POSTRTG - [0:0]\n-A FLANNEL-POSTRTG -s 10.42.1.0/24 -j MASQUERADE --random-fully\nCOMMIT\n"+
		"*filter\n:FLANNEL-FWD - [0:0]\nCOMMIT\n", restoreText([]string{"-A FLANNEL-POSTRTG -s 10.42.1.0/24 -j MASQUERADE --random-fully"}, nil))
}
