package clustercidr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type namedSpec struct {
	name string
	spec ClusterCIDRSpec
}

// TestRankFor checks the order in which ClusterCIDRs are tried for a node (upstream's multi-CIDR allocator's, with the
// ORed terms fix), one tie-break level at a time.
func TestRankFor(t *testing.T) {
	zone := selecting(term(in("zone", "z1")))
	tests := []struct {
		name string
		ccs  []namedSpec
		node Node
		want []string
	}{
		{
			name: "P0: two matching requirements beat one",
			ccs: []namedSpec{
				{"one", ccSpec("10.1.0.0/24", "", 4, zone)},
				{"two", ccSpec("10.2.0.0/16", "", 8, selecting(term(in("zone", "z1"), in("pool", "p2"))))},
			},
			node: node("n", "zone", "z1", "pool", "p2"),
			want: []string{"two", "one"},
		},
		{
			name: "P0 counts the longest matching ORed term",
			ccs: []namedSpec{
				{"two", ccSpec("10.2.0.0/24", "", 4, selecting(term(in("zone", "z1"), exists("ssd"))))},
				{"ored", ccSpec("10.3.0.0/16", "", 8, selecting(term(in("zone", "z9")), term(in("zone", "z1"), in("pool", "p2"), exists("ssd"))))},
			},
			node: node("n", "zone", "z1", "pool", "p2", "ssd", ""),
			want: []string{"ored", "two"},
		},
		{
			name: "P1: with equal requirements, fewer allocatable CIDRs first",
			ccs: []namedSpec{
				{"big", ccSpec("10.1.0.0/16", "", 8, zone)},   // 256 blocks
				{"small", ccSpec("10.2.0.0/20", "", 8, zone)}, // 16 blocks
			},
			node: node("n", "zone", "z1"),
			want: []string{"small", "big"},
		},
		{
			name: "P1 uses the smaller family of a dual-stack ClusterCIDR",
			ccs: []namedSpec{
				{"v4", ccSpec("10.1.0.0/20", "", 8, zone)},                     // 16 blocks
				{"dual", ccSpec("10.2.0.0/16", "fd00:2::/116", 8, zone)},       // 256 IPv4, 16 IPv6 blocks
				{"dual-tight", ccSpec("10.3.0.0/16", "fd00:3::/118", 8, zone)}, // 256 IPv4, 4 IPv6 blocks
			},
			node: node("n", "zone", "z1"),
			want: []string{"dual-tight", "v4", "dual"}, // v4 and dual tie at 16 blocks; P4 puts 10.1 first
		},
		{
			name: "P2: with equal counts, the smaller per-node block first",
			ccs: []namedSpec{
				{"wide", ccSpec("10.1.0.0/16", "", 8, zone)},   // 256 × /24
				{"narrow", ccSpec("10.2.0.0/20", "", 4, zone)}, // 256 × /28
			},
			node: node("n", "zone", "z1"),
			want: []string{"narrow", "wide"},
		},
		{
			name: "P3: then the smaller selector text",
			ccs: []namedSpec{
				{"by-zone", ccSpec("10.1.0.0/16", "", 8, zone)},
				{"by-pool", ccSpec("10.2.0.0/16", "", 8, selecting(term(in("pool", "p2"))))},
			},
			node: node("n", "zone", "z1", "pool", "p2"),
			want: []string{"by-pool", "by-zone"},
		},
		{
			name: "P4: then the lower address, compared as an address (10.9 before 10.10)",
			ccs: []namedSpec{
				{"a", ccSpec("10.10.0.0/16", "", 8, zone)},
				{"b", ccSpec("10.9.0.0/16", "", 8, zone)},
			},
			node: node("n", "zone", "z1"),
			want: []string{"b", "a"},
		},
		{
			name: "identical specs are ordered by name",
			ccs: []namedSpec{
				{"y", ccSpec("10.1.0.0/16", "", 8, zone)},
				{"x", ccSpec("10.1.0.0/16", "", 8, zone)},
			},
			node: node("n", "zone", "z1"),
			want: []string{"x", "y"},
		},
		{
			name: "selector-less ClusterCIDRs come last, even when smaller, ordered among themselves like the rest",
			ccs: []namedSpec{
				{DefaultClusterCIDRName, ccSpec("10.42.0.0/16", "", 8)},
				{"extra-default", ccSpec("10.50.0.0/24", "", 4)},
				{"big", ccSpec("10.0.0.0/8", "", 8, zone)},
			},
			node: node("n", "zone", "z1"),
			want: []string{"big", "extra-default", DefaultClusterCIDRName},
		},
		{
			name: "ClusterCIDRs that do not select the node are left out",
			ccs: []namedSpec{
				{"other-zone", ccSpec("10.1.0.0/16", "", 8, selecting(term(in("zone", "z0"))))},
				{"not-z1", ccSpec("10.2.0.0/16", "", 8, selecting(term(notIn("zone", "z1"))))},
				{"no-gpu", ccSpec("10.3.0.0/16", "", 8, selecting(term(doesNotExist("gpu"))))},
				{"gpu", ccSpec("10.4.0.0/16", "", 8, selecting(term(exists("gpu"))))},
			},
			node: node("n", "zone", "z1"),
			want: []string{"no-gpu"},
		},
		{
			name: "matchFields on metadata.name count as requirements",
			ccs: []namedSpec{
				{"by-name", ccSpec("10.1.0.0/16", "", 8, selecting(term(nameIs("In", "worker2"), in("zone", "z1"))))},
				{"by-zone", ccSpec("10.2.0.0/24", "", 4, zone)},
			},
			node: node("worker2", "zone", "z1"),
			want: []string{"by-name", "by-zone"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAllocator(t)
			for _, c := range tt.ccs {
				require.NoError(t, a.AddClusterCIDR(c.name, c.spec))
			}
			var got []string
			for _, c := range rankFor(nil, a.ranked, tt.node) {
				got = append(got, c.cc.name)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
