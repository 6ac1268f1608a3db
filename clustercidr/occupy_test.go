package clustercidr

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOccupy(t *testing.T) {
	zone := selecting(term(in("zone", "z1")))
	a := newTestAllocator(t, "10.43.0.0/16")
	runSteps(t, a, []step{
		{name: "a zone ClusterCIDR is added", op: opAdd, cc: "a", spec: ccSpec("10.1.0.0/16", "", 8, zone)},
		{name: "a default covering the service range is added", op: opAdd, cc: DefaultClusterCIDRName, spec: ccSpec("10.42.0.0/15", "", 8)},
		{name: "a z1 node's existing CIDR is occupied in a", op: opOccupy, node: withCIDRs(node("n1", "zone", "z1"), "10.1.5.0/24"), want: alloc("a", "10.1.5.0/24")},
		{name: "occupying the same CIDR again is a no-op", op: opOccupy, node: withCIDRs(node("n1", "zone", "z1"), "10.1.5.0/24"), want: alloc("a", "10.1.5.0/24")},
		{name: "a CIDR overlapping another node's is refused", op: opOccupy, node: withCIDRs(node("n2"), "10.1.5.128/25"), wantErr: ErrAlreadyAllocated},
		{name: "a CIDR containing another node's is refused", op: opOccupy, node: withCIDRs(node("n2"), "10.1.0.0/20"), wantErr: ErrAlreadyAllocated},
		{
			name: "a CIDR inside a ClusterCIDR whose selector no longer matches is still attributed to it",
			op:   opOccupy, node: withCIDRs(node("n2"), "10.1.6.0/24"), want: alloc("a", "10.1.6.0/24"),
		},
		{name: "a CIDR larger than one block is occupied whole", op: opOccupy, node: withCIDRs(node("n3", "zone", "z1"), "10.1.8.0/23"), want: alloc("a", "10.1.8.0/23")},
		{name: "a CIDR with host bits set is masked", op: opOccupy, node: withCIDRs(node("n4", "zone", "z1"), "10.1.20.5/24"), want: alloc("a", "10.1.20.0/24")},
		{name: "a node's CIDR inside the service range is a fact and is held", op: opOccupy, node: withCIDRs(node("n5"), "10.43.7.0/24"), want: alloc(DefaultClusterCIDRName, "10.43.7.0/24")},
		{
			name: "a CIDR in no ClusterCIDR is reported, and held anyway",
			op:   opOccupy, node: withCIDRs(node("n6"), "10.99.0.0/24"), want: alloc("", "10.99.0.0/24"), wantErr: ErrCIDROutsideClusterCIDRs,
		},
		{
			name: "a dual-stack node whose IPv6 CIDR lies in no ClusterCIDR: IPv4 is attributed, IPv6 reported as outside",
			op:   opOccupy, node: withCIDRs(node("n7"), "fd00::/64", "10.42.9.0/24"), want: alloc(DefaultClusterCIDRName, "10.42.9.0/24", "fd00::/64"), wantErr: ErrCIDROutsideClusterCIDRs,
		},
		{name: "an IPv6-only ClusterCIDR added later adopts the IPv6 CIDR", op: opAdd, cc: "v6", spec: ccSpec("", "fd00::/48", 16, selecting(term(exists("v6"))))},
		{name: "so the node holds both ClusterCIDRs back from deletion: the IPv6 one", op: opUsers, cc: "v6", want: []string{"n7"}},
		{name: "and the IPv4 one", op: opUsers, cc: DefaultClusterCIDRName, want: []string{"n5", "n7"}},
		{name: "occupying it again reports no problem", op: opOccupy, node: withCIDRs(node("n7"), "fd00::/64", "10.42.9.0/24"), want: allocFrom([]string{DefaultClusterCIDRName, "v6"}, "10.42.9.0/24", "fd00::/64")},
		{
			name: "a dual-stack node whose families lie in two single-family ClusterCIDRs belongs to both",
			op:   opOccupy, node: withCIDRs(node("n12", "zone", "z1"), "fd00:0:0:5::/64", "10.1.40.0/24"), want: allocFrom([]string{"a", "v6"}, "10.1.40.0/24", "fd00:0:0:5::/64"),
		},
		{name: "deleting the IPv6 ClusterCIDR waits for both of its nodes", op: opDelete, cc: "v6", want: []string{"n12", "n7"}},
		{name: "the zone ClusterCIDR counts n12 among its nodes", op: opUsers, cc: "a", want: []string{"n1", "n12", "n2", "n3", "n4"}},
		{
			name: "occupying the outside CIDR again reports it again",
			op:   opOccupy, node: withCIDRs(node("n6"), "10.99.0.0/24"), want: alloc("", "10.99.0.0/24"), wantErr: ErrCIDROutsideClusterCIDRs,
		},
		{name: "a CIDR overlapping an outside CIDR is refused too", op: opOccupy, node: withCIDRs(node("n8"), "10.99.0.128/25"), wantErr: ErrAlreadyAllocated},
		{name: "a ClusterCIDR added later adopts the outside node", op: opAdd, cc: "late", spec: ccSpec("10.99.0.0/16", "", 8, selecting(term(exists("never"))))},
		{name: "so the node holds it back from deletion", op: opUsers, cc: "late", want: []string{"n6"}},
		{name: "allocation skips every occupied block", op: opAllocate, node: node("n9", "zone", "z1"), want: alloc("a", "10.1.0.0/24")},
		{name: "different CIDRs replace what the node held", op: opOccupy, node: withCIDRs(node("n1", "zone", "z1"), "10.1.1.0/24"), want: alloc("a", "10.1.1.0/24")},
		{name: "so its old block is free again", op: opAllocate, node: node("n10", "zone", "z1"), want: alloc("a", "10.1.2.0/24")},
		{name: "a node with two IPv4 CIDRs is refused", op: opOccupy, node: withCIDRs(node("n11"), "10.1.30.0/24", "10.1.31.0/24"), wantErr: ErrInvalidNode},
		{name: "a node without CIDRs has nothing to occupy", op: opOccupy, node: node("n11"), wantErr: ErrInvalidNode},
		{name: "an IPv4-mapped IPv6 CIDR is refused", op: opOccupy, node: withCIDRs(node("n11"), "::ffff:10.1.30.0/120"), wantErr: ErrInvalidNode},
		{name: "a node without a name is refused", op: opOccupy, node: withCIDRs(node(""), "10.1.30.0/24"), wantErr: ErrInvalidNode},
	})
}

func TestOccupyNamesOnlyTheCIDRsOutsideEveryClusterCIDR(t *testing.T) {
	a := newTestAllocator(t)
	require.NoError(t, a.AddClusterCIDR(DefaultClusterCIDRName, ccSpec("10.42.0.0/16", "", 8)))
	_, err := a.Occupy(withCIDRs(node("n1"), "10.42.1.0/24", "fd00::/64"))
	require.ErrorIs(t, err, ErrCIDROutsideClusterCIDRs)
	assert.EqualError(t, err, `node "n1": pod CIDRs [fd00::/64] are held but lie in no ClusterCIDR: pod CIDR is outside every ClusterCIDR`)

	// Released, the node leaves both the ClusterCIDR and the outside list.
	_, ok := a.Release("n1")
	require.True(t, ok)
	assert.Empty(t, a.NodesUsing(DefaultClusterCIDRName))
	checkInvariants(t, a)
	assert.Empty(t, a.unattributed)
}

func TestDeletingAClusterCIDRKeepsItsOccupiedNodes(t *testing.T) {
	a := newTestAllocator(t)
	runSteps(t, a, []step{
		{name: "a ClusterCIDR is added", op: opAdd, cc: "a", spec: ccSpec("10.1.0.0/16", "", 8, selecting(term(exists("a"))))},
		{name: "it is being deleted", op: opDelete, cc: "a", want: []string(nil)},
		{name: "it is forgotten at once since no node uses it", op: opUsers, cc: "a", want: []string(nil)},
		{name: "a ClusterCIDR being deleted at start-up is added", op: opAdd, cc: "b", spec: ccSpec("10.2.0.0/16", "", 8, selecting(term(exists("b"))))},
		{name: "a node's existing CIDR is occupied in it", op: opOccupy, node: withCIDRs(node("n1", "b", ""), "10.2.0.0/24"), want: alloc("b", "10.2.0.0/24")},
		{name: "then it is marked deleted and waits for the node", op: opDelete, cc: "b", want: []string{"n1"}},
		{name: "a node restarted with the same CIDR is still attributed to the terminating ClusterCIDR", op: opOccupy, node: withCIDRs(node("n2", "b", ""), "10.2.1.0/24"), want: alloc("b", "10.2.1.0/24")},
		{name: "so deletion waits for both", op: opDelete, cc: "b", want: []string{"n1", "n2"}},
		{name: "but a new node gets nothing from it", op: opAllocate, node: node("n3", "b", ""), wantErr: ErrNoCIDRAvailable},
	})
}

func TestRestoreRebuildsTheSameStateWithoutDuplicates(t *testing.T) {
	w := ipamWorkload{scale: 1, name: benchNodeName}
	build := func() *Allocator { return w.allocator(t) }
	nodes := w.nodes()[:400]

	// The first controller allocates, and some nodes go.
	first := build()
	for _, n := range nodes[:300] {
		_, err := first.Allocate(n)
		require.NoError(t, err)
	}
	for i := 0; i < 300; i += 7 {
		first.Release(nodes[i].Name)
	}

	// The restarted controller sees the Nodes with their spec.podCIDRs, in lister order.
	var seen []Node
	for _, n := range nodes {
		n := cloneNode(n)
		if got, ok := first.Lookup(n.Name); ok {
			n.PodCIDRs = got.PodCIDRs
		}
		seen = append(seen, n)
	}
	slices.Reverse(seen)
	seenIn := make([]Node, len(seen))
	for i, n := range seen {
		seenIn[i] = cloneNode(n)
	}
	second := build()
	require.NoError(t, second.Restore(seen))
	assert.Equal(t, seenIn, seen, "Restore modified its input")
	assert.Equal(t, snapshot(first), snapshot(second), "the restored allocator holds what the first one held")
	checkInvariants(t, second)

	// Both go on to allocate the remaining nodes identically and without duplicates.
	for _, n := range nodes[300:] {
		want, wantErr := first.Allocate(n)
		got, err := second.Allocate(n)
		assert.Equal(t, wantErr, err)
		assert.Equal(t, readable(want), readable(got))
	}
	checkInvariants(t, second)
}

func TestRestoreReportsEveryBadNodeAndKeepsTheRest(t *testing.T) {
	a := newTestAllocator(t)
	require.NoError(t, a.AddClusterCIDR(DefaultClusterCIDRName, ccSpec("10.42.0.0/16", "", 8)))
	err := a.Restore([]Node{
		withCIDRs(node("c"), "10.42.1.0/24"), // same CIDR as b: c is later by name, so c fails
		withCIDRs(node("b"), "10.42.1.0/24"),
		withCIDRs(node("a"), "192.168.0.0/24"), // outside, held anyway
		node("d"),                              // no CIDRs: left for Allocate
		withCIDRs(node("e"), "10.42.2.0/24"),
	})
	assert.ErrorIs(t, err, ErrAlreadyAllocated)
	assert.ErrorIs(t, err, ErrCIDROutsideClusterCIDRs)
	assert.ErrorContains(t, err, `node "c": pod CIDR 10.42.1.0/24 overlaps 10.42.1.0/24 of node "b"`)
	st := snapshot(a)
	assert.Equal(t, []string{"a", "b", "e"}, slices.Sorted(maps.Keys(st.Nodes)))
	got, err := a.Allocate(node("d"))
	require.NoError(t, err)
	assert.Equal(t, readable(alloc(DefaultClusterCIDRName, "10.42.0.0/24")), readable(got))
}

func TestNodeFromAPI(t *testing.T) {
	tests := []struct {
		name    string
		node    *corev1.Node
		want    Node
		wantErr error
	}{
		{
			name: "spec.podCIDRs become prefixes",
			node: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"}},
				Spec:       corev1.NodeSpec{PodCIDR: "10.42.0.0/24", PodCIDRs: []string{"10.42.0.0/24", "fd00::/64"}},
			},
			want: Node{Name: "n", Labels: map[string]string{"a": "b"}, PodCIDRs: pfxs("10.42.0.0/24", "fd00::/64")},
		},
		{
			name: "the legacy spec.podCIDR is used when spec.podCIDRs is empty",
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{PodCIDR: "10.42.0.0/24"}},
			want: Node{Name: "n", PodCIDRs: pfxs("10.42.0.0/24")},
		},
		{
			name: "a node without pod CIDRs has none",
			node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
			want: Node{Name: "n"},
		},
		{
			name:    "an unparsable pod CIDR is an error",
			node:    &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.42.0.0"}}},
			wantErr: ErrInvalidNode,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nodeFromAPI(tt.node)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.Name, got.Name)
			assert.Equal(t, tt.want.Labels, got.Labels)
			assert.Equal(t, strs(tt.want.PodCIDRs), strs(got.PodCIDRs))
		})
	}
}
