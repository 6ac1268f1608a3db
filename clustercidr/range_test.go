package clustercidr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// Without --multi-cluster-cidr the controller allocates as K3s's range allocator: each family
// of --cluster-cidr with its own node mask.
func TestAddRangeGivesEachFamilyItsOwnNodeMask(t *testing.T) {
	a := newTestAllocator(t, "10.43.0.0/16", "fd00:43::/112")
	require.NoError(t, a.AddRange(DefaultClusterCIDRName, pfxs("10.42.0.0/16", "fd00:42::/56"), 24, 64))
	runSteps(t, a, []step{
		{name: "a node gets a /24 and a /64, IPv4 first", op: opAllocate, node: node("n1"), want: alloc(DefaultClusterCIDRName, "10.42.0.0/24", "fd00:42::/64")},
		{name: "the next pair is the next block of each family", op: opAllocate, node: node("n2"), want: alloc(DefaultClusterCIDRName, "10.42.1.0/24", "fd00:42:0:1::/64")},
		{name: "an existing CIDR of either size is occupied in it", op: opOccupy, node: withCIDRs(node("n3"), "10.42.8.0/22", "fd00:42:0:9::/64"), want: alloc(DefaultClusterCIDRName, "10.42.8.0/22", "fd00:42:0:9::/64")},
		{name: "released, a node's pair is handed out again", op: opRelease, node: node("n1"), want: alloc(DefaultClusterCIDRName, "10.42.0.0/24", "fd00:42::/64")},
		{name: "lowest first", op: opAllocate, node: node("n4"), want: alloc(DefaultClusterCIDRName, "10.42.0.0/24", "fd00:42::/64")},
	})
	usage, ok := a.Usage(DefaultClusterCIDRName)
	require.True(t, ok)
	assert.Equal(t, []string{"10.42.0.0/16 /24 blocks=256 free=250", "fd00:42::/56 /64 blocks=256 free=253"}, readable(usage))

	assert.NoError(t, a.AddRange(DefaultClusterCIDRName, pfxs("10.42.0.0/16", "fd00:42::/56"), 24, 64), "the same range again is a no-op")
	assert.ErrorIs(t, a.AddRange(DefaultClusterCIDRName, pfxs("10.42.0.0/16", "fd00:42::/56"), 24, 80), ErrInvalidClusterCIDR, "another mask under the same name")
	checkInvariants(t, a)
}

func TestAddRangeRefusesRangesTheRangeAllocatorRefuses(t *testing.T) {
	for _, tt := range []struct {
		name     string
		prefixes []netip.Prefix
		m4, m6   int
		wantErr  string
	}{
		{"no prefix", nil, 24, 64, "no prefix"},
		{"a node mask shorter than the range", pfxs("10.42.0.0/25"), 24, 64, "IPv4 node mask /24 does not fit in 10.42.0.0/25"},
		{"an IPv6 node mask longer than an address", pfxs("fd00::/56"), 24, 129, "IPv6 node mask /129 does not fit"},
		{"two prefixes of one family", pfxs("10.42.0.0/16", "10.44.0.0/16"), 24, 64, "two IPv4 prefixes"},
		{"an IPv4-mapped prefix", pfxs("::ffff:10.42.0.0/112"), 24, 64, "not a valid prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := newTestAllocator(t).AddRange("r", tt.prefixes, tt.m4, tt.m6)
			assert.ErrorIs(t, err, ErrInvalidClusterCIDR)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// The options are checked against the mode's own range: the range allocator's masks without
// MultiClusterCIDR, the default ClusterCIDR's shared perNodeHostBits with it.
func TestOptionsValidateTheRangeOfTheirMode(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	dual := pfxs("10.42.0.0/16", "fd00:42::/56")
	assert.NoError(t, Options{ClusterCIDRs: dual}.withDefaults().Validate())
	assert.NoError(t, Options{ClusterCIDRs: dual, MultiClusterCIDR: true, Dynamic: dyn}.withDefaults().Validate())

	err := Options{ClusterCIDRs: pfxs("10.42.0.0/25")}.withDefaults().Validate()
	assert.ErrorContains(t, err, "IPv4 node mask /24 does not fit in 10.42.0.0/25")
	// Two /30 blocks of a /29: the range allocator takes them, but a ClusterCIDR needs at
	// least 4 host bits, more than the /29 has.
	tiny := Options{ClusterCIDRs: pfxs("10.42.0.0/29"), NodeCIDRMaskSizeIPv4: 30}
	assert.NoError(t, tiny.withDefaults().Validate())
	tiny.MultiClusterCIDR, tiny.Dynamic = true, dyn
	assert.ErrorContains(t, tiny.withDefaults().Validate(), "spec.perNodeHostBits: 4 is more than the 3 host bits of 10.42.0.0/29")
}
