package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseControllerManagerArgs(t *testing.T) {
	v4 := []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}
	v6 := []netip.Prefix{netip.MustParsePrefix("fd00:42::/56")}
	dual := append(append([]netip.Prefix{}, v4...), v6...)
	for _, tc := range []struct {
		name          string
		args          []string
		cidrs         []netip.Prefix
		want4, want6  int
		wantExtra     []string
		wantErrSubstr string
	}{
		{name: "nothing given", cidrs: v4},
		{name: "the single mask on an IPv4 cluster", args: []string{"node-cidr-mask-size=26"}, cidrs: v4, want4: 26},
		{name: "the single mask on K3s's default cluster CIDR", args: []string{"node-cidr-mask-size=25"}, want4: 25},
		{name: "the single mask on an IPv6 cluster", args: []string{"node-cidr-mask-size=80"}, cidrs: v6, want6: 80},
		{name: "per-family masks on a dual-stack cluster", args: []string{"node-cidr-mask-size-ipv4=25", "node-cidr-mask-size-ipv6=72"}, cidrs: dual, want4: 25, want6: 72},
		{name: "the single mask is refused on a dual-stack cluster", args: []string{"node-cidr-mask-size=24"}, cidrs: dual, wantErrSubstr: "not allowed with a dual-stack"},
		{name: "the single mask excludes the per-family ones", args: []string{"node-cidr-mask-size=24", "node-cidr-mask-size-ipv4=25"}, cidrs: v4, wantErrSubstr: "not allowed with node-cidr-mask-size"},
		{name: "an IPv6 mask on an IPv4 cluster", args: []string{"node-cidr-mask-size-ipv6=64"}, cidrs: v4, wantErrSubstr: "single-stack IPv4"},
		{name: "an IPv4 mask on an IPv6 cluster", args: []string{"node-cidr-mask-size-ipv4=24"}, cidrs: v6, wantErrSubstr: "single-stack IPv6"},
		{name: "a mask that is not a prefix length", args: []string{"node-cidr-mask-size-ipv4=33"}, cidrs: v4, wantErrSubstr: "prefix length, 1-32"},
		{name: "a mask without a value", args: []string{"node-cidr-mask-size"}, cidrs: v4, wantErrSubstr: "prefix length"},
		{name: "the single mask longer than IPv4 on an IPv4 cluster", args: []string{"node-cidr-mask-size=64"}, cidrs: v4, wantErrSubstr: "longer than an IPv4 address"},
		{
			name:      "other flags pass through in order, dashes optional, bare booleans kept",
			args:      []string{"terminated-pod-gc-threshold=10", "--feature-gates=A=true,B=false", "node-cidr-mask-size=25", "enable-dynamic-provisioning"},
			cidrs:     v4,
			want4:     25,
			wantExtra: []string{"--terminated-pod-gc-threshold=10", "--feature-gates=A=true,B=false", "--enable-dynamic-provisioning"},
		},
		{name: "the controller manager's identity is k3slike's", args: []string{"kubeconfig=/tmp/x"}, cidrs: v4, wantErrSubstr: `"kubeconfig=/tmp/x": k3slike sets kubeconfig itself`},
		{name: "node IPAM is clustercidr's", args: []string{"allocate-node-cidrs=true"}, cidrs: v4, wantErrSubstr: "clustercidr"},
		{name: "the cluster CIDR comes from --cluster-cidr", args: []string{"cluster-cidr=10.0.0.0/8"}, cidrs: v4, wantErrSubstr: "--cluster-cidr"},
		{name: "the CA is k3slike's", args: []string{"cluster-signing-key-file=/k"}, cidrs: v4, wantErrSubstr: "cluster CA"},
		{name: "a value without a name", args: []string{"=3"}, cidrs: v4, wantErrSubstr: "want name=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseControllerManagerArgs(tc.args, tc.cidrs)
			if tc.wantErrSubstr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErrSubstr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want4, got.nodeMaskIPv4, "IPv4 mask")
			assert.Equal(t, tc.want6, got.nodeMaskIPv6, "IPv6 mask")
			assert.Equal(t, tc.wantExtra, got.extra)
		})
	}
}

func TestControllerSettingsCarryTheNodeMasks(t *testing.T) {
	cfg := &config{clusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}, kubeControllerManagerArgs: []string{"node-cidr-mask-size=26"}}
	s := cfg.controllerSettings()
	assert.Equal(t, 26, s.NodeCIDRMaskSizeIPv4)
	assert.Zero(t, s.NodeCIDRMaskSizeIPv6)
}
