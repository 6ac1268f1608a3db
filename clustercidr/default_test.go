package clustercidr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultClusterCIDRSpec(t *testing.T) {
	tests := []struct {
		name       string
		cidrs      []netip.Prefix
		mask4      int
		mask6      int
		want       ClusterCIDRSpec
		wantErr    error
		wantBlocks []string // what the first node gets
	}{
		{
			name:  "K3s's default --cluster-cidr gives /24 per node",
			cidrs: pfxs("10.42.0.0/16"), want: ccSpec("10.42.0.0/16", "", 8),
			wantBlocks: []string{"10.42.0.0/24"},
		},
		{
			name:  "an IPv6-only cluster CIDR gives /64 per node",
			cidrs: pfxs("fd00:42::/56"), want: ccSpec("", "fd00:42::/56", 64),
			wantBlocks: []string{"fd00:42::/64"},
		},
		{
			name:  "dual stack /24 + /64 shares the IPv4 host bits: an IPv6 /120 per node, not a /64",
			cidrs: pfxs("fd00:42::/56", "10.42.0.0/16"), want: ccSpec("10.42.0.0/16", "fd00:42::/56", 8),
			wantBlocks: []string{"10.42.0.0/24", "fd00:42::/120"},
		},
		{
			name:  "dual stack uses the IPv6 host bits when the IPv4 ones exceed them",
			cidrs: pfxs("10.0.0.0/8", "fd00::/64"), mask4: 8, mask6: 112, want: ccSpec("10.0.0.0/8", "fd00::/64", 16),
			wantBlocks: []string{"10.0.0.0/16", "fd00::/112"},
		},
		{
			name:  "dual stack falls back to 4 host bits when neither rule fits",
			cidrs: pfxs("10.0.0.0/8", "fd00::/64"), mask4: 30, mask6: 126, want: ccSpec("10.0.0.0/8", "fd00::/64", 4),
			wantBlocks: []string{"10.0.0.0/28", "fd00::/124"},
		},
		{
			name:  "a node mask smaller than 4 host bits is raised to 4",
			cidrs: pfxs("10.42.0.0/16"), mask4: 30, want: ccSpec("10.42.0.0/16", "", 4),
			wantBlocks: []string{"10.42.0.0/28"},
		},
		{
			name:  "a cluster CIDR with host bits set is masked, as the flag parser does",
			cidrs: pfxs("10.42.7.1/16"), want: ccSpec("10.42.0.0/16", "", 8),
			wantBlocks: []string{"10.42.0.0/24"},
		},
		{name: "no cluster CIDR is an error", wantErr: ErrInvalidClusterCIDR},
		{name: "two IPv4 cluster CIDRs are an error", cidrs: pfxs("10.42.0.0/16", "10.43.0.0/16"), wantErr: ErrInvalidClusterCIDR},
		{name: "a cluster CIDR smaller than one node block is an error", cidrs: pfxs("10.42.0.0/28"), wantErr: ErrInvalidClusterCIDR},
		{name: "an IPv4 node mask beyond /32 is an error", cidrs: pfxs("10.42.0.0/16"), mask4: 33, wantErr: ErrInvalidClusterCIDR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DefaultClusterCIDRSpec(tt.cidrs, tt.mask4, tt.mask6)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)

			a := newTestAllocator(t)
			require.NoError(t, a.AddClusterCIDR(DefaultClusterCIDRName, got))
			al, err := a.Allocate(node("n"))
			require.NoError(t, err)
			assert.Equal(t, readable(alloc(DefaultClusterCIDRName, tt.wantBlocks...)), readable(al))
		})
	}
}
