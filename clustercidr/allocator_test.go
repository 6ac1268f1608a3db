package clustercidr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAllocateFallsThroughExhaustedClusterCIDRsToTheDefault(t *testing.T) {
	// Shaped like bench/ipam-workload.py, small enough to exhaust.
	z1p2 := selecting(term(in("zone", "z1"), in("pool", "p2")))
	pool1 := selecting(term(in("pool", "p1")))
	a := newTestAllocator(t)
	runSteps(t, a, []step{
		{name: "the two-requirement ClusterCIDR is added", op: opAdd, cc: "z1p2", spec: ccSpec("10.102.0.0/23", "", 8, z1p2)},
		{name: "the one-requirement ClusterCIDR is added", op: opAdd, cc: "pool-1", spec: ccSpec("10.101.0.0/24", "", 7, pool1)},
		{name: "the default is added", op: opAdd, cc: DefaultClusterCIDRName, spec: ccSpec("10.0.0.0/22", "", 8)},
		{name: "a z1/p2 node gets the lowest block of z1p2", op: opAllocate, node: node("n1", "zone", "z1", "pool", "p2"), want: alloc("z1p2", "10.102.0.0/24")},
		{name: "the next z1/p2 node gets the next block", op: opAllocate, node: node("n2", "zone", "z1", "pool", "p2"), want: alloc("z1p2", "10.102.1.0/24")},
		{name: "a z1/p2 node falls through the exhausted z1p2 to the default", op: opAllocate, node: node("n3", "zone", "z1", "pool", "p2"), want: alloc(DefaultClusterCIDRName, "10.0.0.0/24")},
		{name: "a p1 node gets a /25 of pool-1", op: opAllocate, node: node("n4", "pool", "p1"), want: alloc("pool-1", "10.101.0.0/25")},
		{name: "the second p1 node fills pool-1", op: opAllocate, node: node("n5", "pool", "p1"), want: alloc("pool-1", "10.101.0.128/25")},
		{name: "a third p1 node falls through to the default", op: opAllocate, node: node("n6", "pool", "p1"), want: alloc(DefaultClusterCIDRName, "10.0.1.0/24")},
		{name: "an unlabelled node goes to the default", op: opAllocate, node: node("n7"), want: alloc(DefaultClusterCIDRName, "10.0.2.0/24")},
		{name: "another unlabelled node takes the last default block", op: opAllocate, node: node("n8"), want: alloc(DefaultClusterCIDRName, "10.0.3.0/24")},
		{name: "with everything full a node gets no CIDR", op: opAllocate, node: node("n9"), wantErr: ErrNoCIDRAvailable},
		{name: "a z1/p2 node gets none either once every match is full", op: opAllocate, node: node("n10", "zone", "z1", "pool", "p2"), wantErr: ErrNoCIDRAvailable},
		{name: "releasing a z1p2 node returns its allocation", op: opRelease, node: node("n1"), want: alloc("z1p2", "10.102.0.0/24")},
		{name: "the freed z1p2 block does not go to a node z1p2 does not select", op: opAllocate, node: node("n9"), wantErr: ErrNoCIDRAvailable},
		{name: "the freed block goes to the next z1/p2 node", op: opAllocate, node: node("n10", "zone", "z1", "pool", "p2"), want: alloc("z1p2", "10.102.0.0/24")},
		{name: "allocating again for a node that holds blocks returns them", op: opAllocate, node: node("n2", "zone", "z1", "pool", "p2"), want: alloc("z1p2", "10.102.1.0/24")},
		{name: "a node that already has pod CIDRs cannot be given new ones", op: opAllocate, node: withCIDRs(node("n11"), "10.9.0.0/24"), wantErr: ErrAlreadyAllocated},
		{name: "a node without a name is refused", op: opAllocate, node: node(""), wantErr: ErrInvalidNode},
	})
}

func TestK3sDocsHostnameClusterCIDR(t *testing.T) {
	def, err := DefaultClusterCIDRSpec(pfxs("10.42.0.0/16"), 0, 0)
	require.NoError(t, err)
	a := newTestAllocator(t, "10.43.0.0/16")
	runSteps(t, a, []step{
		{name: "the default comes from --cluster-cidr", op: opAdd, cc: DefaultClusterCIDRName, spec: def},
		{
			name: "the K3s documentation's ClusterCIDR selects worker2 by hostname", op: opAdd, cc: "worker2-cidr",
			spec: ccSpec("10.247.0.0/16", "", 8, selecting(term(in("kubernetes.io/hostname", "worker2")))),
		},
		{name: "worker1 gets the default's first /24", op: opAllocate, node: node("worker1", "kubernetes.io/hostname", "worker1"), want: alloc(DefaultClusterCIDRName, "10.42.0.0/24")},
		{name: "worker2 gets its pod CIDR from 10.247.0.0/16", op: opAllocate, node: node("worker2", "kubernetes.io/hostname", "worker2"), want: alloc("worker2-cidr", "10.247.0.0/24")},
		{name: "worker3 gets the default's next /24", op: opAllocate, node: node("worker3", "kubernetes.io/hostname", "worker3"), want: alloc(DefaultClusterCIDRName, "10.42.1.0/24")},
	})
}

func TestAllocateDualStackIsAllOrNothing(t *testing.T) {
	gpu := selecting(term(exists("gpu")))
	// The service CIDR takes the second of the four IPv6 blocks of "dual", so its IPv6 side
	// runs out while one IPv4 block is left.
	a := newTestAllocator(t, "fd00:1::100/120")
	runSteps(t, a, []step{
		{name: "a dual-stack ClusterCIDR with 4 blocks per family is added", op: opAdd, cc: "dual", spec: ccSpec("10.1.0.0/22", "fd00:1::/118", 8, gpu)},
		{name: "a dual-stack default is added", op: opAdd, cc: DefaultClusterCIDRName, spec: ccSpec("10.42.0.0/16", "fd00:42::/112", 8)},
		{name: "a gpu node gets one block of each family, IPv4 first", op: opAllocate, node: node("g1", "gpu", ""), want: alloc("dual", "10.1.0.0/24", "fd00:1::/120")},
		{name: "the IPv6 block under the service CIDR is skipped", op: opAllocate, node: node("g2", "gpu", ""), want: alloc("dual", "10.1.1.0/24", "fd00:1::200/120")},
		{name: "the last IPv6 block goes with the next IPv4 one", op: opAllocate, node: node("g3", "gpu", ""), want: alloc("dual", "10.1.2.0/24", "fd00:1::300/120")},
		{
			name: "with IPv6 exhausted the node gets both families from the default, not IPv4 from dual",
			op:   opAllocate, node: node("g4", "gpu", ""), want: alloc(DefaultClusterCIDRName, "10.42.0.0/24", "fd00:42::/120"),
		},
	})
	u, ok := a.Usage("dual")
	require.True(t, ok)
	assert.Equal(t, readable([]Usage{
		{Prefix: pfx("10.1.0.0/22"), BlockBits: 24, Blocks: 4, Free: 1},
		{Prefix: pfx("fd00:1::/118"), BlockBits: 120, Blocks: 4, Free: 0},
	}), readable(u), "the IPv4 block dual could not pair stays free")

	// With no default, the same node gets nothing, and the free IPv4 block stays free.
	b := newTestAllocator(t, "fd00:1::100/120")
	runSteps(t, b, []step{
		{name: "only the dual-stack ClusterCIDR is added", op: opAdd, cc: "dual", spec: ccSpec("10.1.0.0/22", "fd00:1::/118", 8, gpu)},
		{name: "g1 fills the first pair", op: opAllocate, node: node("g1", "gpu", ""), want: alloc("dual", "10.1.0.0/24", "fd00:1::/120")},
		{name: "g2 fills the second pair", op: opAllocate, node: node("g2", "gpu", ""), want: alloc("dual", "10.1.1.0/24", "fd00:1::200/120")},
		{name: "g3 fills the third pair", op: opAllocate, node: node("g3", "gpu", ""), want: alloc("dual", "10.1.2.0/24", "fd00:1::300/120")},
		{name: "g4 gets nothing and leaves no IPv4 block taken", op: opAllocate, node: node("g4", "gpu", ""), wantErr: ErrNoCIDRAvailable},
	})
}

func TestServiceCIDRsAreNeverHandedOut(t *testing.T) {
	tests := []struct {
		name    string
		service []string
		spec    ClusterCIDRSpec
		want    []Allocation
	}{
		{
			name:    "blocks inside the service CIDR are skipped",
			service: []string{"10.43.0.0/22"},
			spec:    ccSpec("10.43.0.0/16", "", 8),
			want:    []Allocation{alloc("cc", "10.43.4.0/24"), alloc("cc", "10.43.5.0/24")},
		},
		{
			name:    "a block touched by a single service address is skipped",
			service: []string{"10.42.0.10/32"},
			spec:    ccSpec("10.42.0.0/23", "", 8),
			want:    []Allocation{alloc("cc", "10.42.1.0/24")},
		},
		{
			name:    "a primary and a secondary service CIDR are both reserved",
			service: []string{"10.42.0.0/24", "fd00:42::/120"},
			spec:    ccSpec("10.42.0.0/22", "fd00:42::/118", 8),
			want:    []Allocation{alloc("cc", "10.42.1.0/24", "fd00:42::100/120"), alloc("cc", "10.42.2.0/24", "fd00:42::200/120")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAllocator(t, tt.service...)
			require.NoError(t, a.AddClusterCIDR("cc", tt.spec))
			for i, want := range tt.want {
				got, err := a.Allocate(node(nodeName(i)))
				require.NoError(t, err)
				assert.Equal(t, readable(want), readable(got))
			}
		})
	}
}

func TestAllocateNeverHandsOutTwiceAcrossOverlappingClusterCIDRs(t *testing.T) {
	a := newTestAllocator(t)
	runSteps(t, a, []step{
		{name: "a ClusterCIDR of /24 blocks is added", op: opAdd, cc: "wide", spec: ccSpec("10.0.0.0/16", "", 8, selecting(term(in("role", "big"))))},
		{name: "an overlapping ClusterCIDR of /26 blocks is added", op: opAdd, cc: "narrow", spec: ccSpec("10.0.0.0/22", "", 6, selecting(term(in("role", "small"))))},
		{name: "a big node takes 10.0.0.0/24", op: opAllocate, node: node("big1", "role", "big"), want: alloc("wide", "10.0.0.0/24")},
		{name: "a small node skips the /26s inside it", op: opAllocate, node: node("small1", "role", "small"), want: alloc("narrow", "10.0.1.0/26")},
		{name: "a big node skips the /24 a /26 now touches", op: opAllocate, node: node("big2", "role", "big"), want: alloc("wide", "10.0.2.0/24")},
		{name: "a small node takes the next /26", op: opAllocate, node: node("small2", "role", "small"), want: alloc("narrow", "10.0.1.64/26")},
		{name: "releasing big1 frees four /26s", op: opRelease, node: node("big1"), want: alloc("wide", "10.0.0.0/24")},
		{name: "a small node now takes the lowest of them", op: opAllocate, node: node("small3", "role", "small"), want: alloc("narrow", "10.0.0.0/26")},
		{name: "a big node cannot have 10.0.0.0/24 back", op: opAllocate, node: node("big3", "role", "big"), want: alloc("wide", "10.0.3.0/24")},
		{name: "releasing small3 leaves 10.0.0.0/24 wholly free", op: opRelease, node: node("small3"), want: alloc("narrow", "10.0.0.0/26")},
		{name: "so the next big node gets it", op: opAllocate, node: node("big4", "role", "big"), want: alloc("wide", "10.0.0.0/24")},
	})
}

func TestDeleteClusterCIDRWaitsForItsNodes(t *testing.T) {
	zone := selecting(term(in("zone", "z1")))
	a := newTestAllocator(t)
	runSteps(t, a, []step{
		{name: "a zone ClusterCIDR is added", op: opAdd, cc: "a", spec: ccSpec("10.1.0.0/16", "", 8, zone)},
		{name: "the default is added", op: opAdd, cc: DefaultClusterCIDRName, spec: ccSpec("10.42.0.0/16", "", 8)},
		{name: "a z1 node gets a block of a", op: opAllocate, node: node("n1", "zone", "z1"), want: alloc("a", "10.1.0.0/24")},
		{name: "deleting a reports the node that still uses it", op: opDelete, cc: "a", want: []string{"n1"}},
		{name: "the terminating ClusterCIDR hands out nothing more", op: opAllocate, node: node("n2", "zone", "z1"), want: alloc(DefaultClusterCIDRName, "10.42.0.0/24")},
		{name: "deleting again reports the same node", op: opDelete, cc: "a", want: []string{"n1"}},
		{name: "adding the same spec again changes nothing", op: opAdd, cc: "a", spec: ccSpec("10.1.0.0/16", "", 8, zone)},
		{name: "a different spec under the same name is refused as immutable", op: opAdd, cc: "a", spec: ccSpec("10.1.0.0/16", "", 7, zone), wantErr: ErrInvalidClusterCIDR},
		{name: "the node using it still counts", op: opUsers, cc: "a", want: []string{"n1"}},
		{name: "its node goes", op: opRelease, node: node("n1"), want: alloc("a", "10.1.0.0/24")},
		{name: "now deleting a reports no node, so the finalizer may go", op: opDelete, cc: "a", want: []string(nil)},
		{name: "a forgotten ClusterCIDR has no nodes", op: opUsers, cc: "a", want: []string(nil)},
		{name: "deleting an unknown ClusterCIDR reports no node", op: opDelete, cc: "never", want: []string(nil)},
		{name: "a z1 node now goes to the default", op: opAllocate, node: node("n3", "zone", "z1"), want: alloc(DefaultClusterCIDRName, "10.42.1.0/24")},
		{name: "the ClusterCIDR is created again, even with another spec", op: opAdd, cc: "a", spec: ccSpec("10.1.0.0/16", "", 7, zone)},
		{name: "and hands out its lowest block again", op: opAllocate, node: node("n4", "zone", "z1"), want: alloc("a", "10.1.0.0/25")},
		{name: "an invalid spec is refused", op: opAdd, cc: "bad", spec: ccSpec("10.1.0.0/16", "", 2), wantErr: ErrInvalidClusterCIDR},
		{name: "a ClusterCIDR without a name is refused", op: opAdd, cc: "", spec: ccSpec("10.1.0.0/16", "", 8), wantErr: ErrInvalidClusterCIDR},
	})
}

func TestNoClusterCIDRSelectsTheNode(t *testing.T) {
	a := newTestAllocator(t)
	runSteps(t, a, []step{
		{name: "only a selective ClusterCIDR exists", op: opAdd, cc: "gpu", spec: ccSpec("10.1.0.0/16", "", 8, selecting(term(exists("gpu"))))},
		{name: "a node it does not select gets no CIDR", op: opAllocate, node: node("n1"), wantErr: ErrNoCIDRAvailable},
	})
}
