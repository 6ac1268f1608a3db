package clustercidr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSelectorIndexFindsEveryClusterCIDRThatSelects checks that ranking the index's
// candidates gives what ranking every ClusterCIDR gives, for selectors it files and selectors
// it cannot, and that a forgotten ClusterCIDR leaves no trace in it.
func TestSelectorIndexFindsEveryClusterCIDRThatSelects(t *testing.T) {
	specs := []namedSpec{
		{"zone", ccSpec("10.1.0.0/16", "", 8, selecting(term(in("zone", "z1", "z2"))))},
		{"zone-pool", ccSpec("10.2.0.0/16", "", 8, selecting(term(in("zone", "z1"), in("pool", "p1", "p2", "p3"))))},
		{"ored", ccSpec("10.3.0.0/16", "", 8, selecting(term(in("zone", "z3")), term(in("pool", "p2"), exists("gpu"))))},
		{"same-value-twice", ccSpec("10.4.0.0/16", "", 8, selecting(term(in("zone", "z1")), term(in("zone", "z1"), exists("gpu"))))},
		{"by-name", ccSpec("10.5.0.0/16", "", 8, selecting(term(nameIs("In", "n2"))))},
		{"notin-only-term", ccSpec("10.6.0.0/16", "", 8, selecting(term(in("zone", "z9")), term(notIn("zone", "z1"))))},
		{"exists", ccSpec("10.7.0.0/16", "", 8, selecting(term(exists("gpu"))))},
		{"gt", ccSpec("10.8.0.0/16", "", 8, selecting(term(req("rack", "Gt", "3"))))},
		{"no-selector", ccSpec("10.9.0.0/16", "", 8)},
	}
	nodes := []Node{
		node("n1"),
		node("n2", "zone", "z1"),
		node("n3", "zone", "z1", "pool", "p2"),
		node("n4", "zone", "z3", "gpu", ""),
		node("n5", "pool", "p2", "gpu", "", "rack", "7"),
		node("n6", "zone", "z2", "pool", "p9"),
	}
	a := newTestAllocator(t)
	for _, s := range specs {
		require.NoError(t, a.AddClusterCIDR(s.name, s.spec))
	}
	check := func(when string) {
		for _, n := range nodes {
			want := rankedNames(rankFor(nil, a.ranked, n))
			a.rank(n)
			got := rankedNames(a.scratch)
			a.clearScratch()
			assert.Equal(t, want, got, "%s: node %s", when, n.Name)
		}
	}
	check("all added")
	for _, s := range specs {
		a.DeleteClusterCIDR(s.name)
		check("after deleting " + s.name)
	}
	assert.Empty(t, a.index.filed)
	assert.Empty(t, a.index.labelKeys)
	assert.Empty(t, a.index.unfiled)
}

func rankedNames(cs []candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.cc.name)
	}
	return out
}
