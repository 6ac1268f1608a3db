package clustercidr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func sel(terms ...corev1.NodeSelectorTerm) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: terms}
}

func TestNodeSelectorMatch(t *testing.T) {
	tests := []struct {
		name        string
		selector    *corev1.NodeSelector
		node        Node
		wantMatch   bool
		wantMatched int
	}{
		{"no selector selects every node with zero requirements", nil, node("n"), true, 0},
		{"In holds when the label has a listed value", sel(term(in("zone", "z0", "z1"))), node("n", "zone", "z1"), true, 1},
		{"In fails when the label is absent", sel(term(in("zone", "z0"))), node("n"), false, 0},
		{"NotIn holds when the label is absent", sel(term(notIn("zone", "z0"))), node("n"), true, 1},
		{"NotIn fails when the label has a listed value", sel(term(notIn("zone", "z0"))), node("n", "zone", "z0"), false, 0},
		{"NotIn holds when the label has another value", sel(term(notIn("zone", "z0"))), node("n", "zone", "z3"), true, 1},
		{"Exists holds for an empty label value", sel(term(exists("gpu"))), node("n", "gpu", ""), true, 1},
		{"DoesNotExist holds when the label is absent", sel(term(doesNotExist("gpu"))), node("n"), true, 1},
		{"DoesNotExist fails when the label is present", sel(term(doesNotExist("gpu"))), node("n", "gpu", "a100"), false, 0},
		{"Gt compares integers, not strings", sel(term(req("rack", corev1.NodeSelectorOpGt, "9"))), node("n", "rack", "10"), true, 1},
		{"Lt fails on an equal value", sel(term(req("rack", corev1.NodeSelectorOpLt, "10"))), node("n", "rack", "10"), false, 0},
		{"Gt fails on a label that is not an integer", sel(term(req("rack", corev1.NodeSelectorOpGt, "1"))), node("n", "rack", "ten"), false, 0},
		{"Lt fails when the label is absent", sel(term(req("rack", corev1.NodeSelectorOpLt, "10"))), node("n"), false, 0},
		{"matchFields In selects by node name", sel(term(nameIs(corev1.NodeSelectorOpIn, "worker2"))), node("worker2"), true, 1},
		{"matchFields In ignores a label named metadata.name", sel(term(nameIs(corev1.NodeSelectorOpIn, "worker2"))), node("worker1", "metadata.name", "worker2"), false, 0},
		{"matchFields NotIn excludes the named node", sel(term(nameIs(corev1.NodeSelectorOpNotIn, "worker2"))), node("worker2"), false, 0},
		{"requirements of one term are ANDed", sel(term(in("zone", "z1"), in("pool", "p2"))), node("n", "zone", "z1", "pool", "p1"), false, 0},
		{"a term with all requirements holding counts them all", sel(term(in("zone", "z1"), in("pool", "p2"))), node("n", "zone", "z1", "pool", "p2"), true, 2},
		{
			"terms are ORed: the second term alone selects the node (upstream ANDed them, kubernetes#116419)",
			sel(term(in("zone", "z0")), term(in("pool", "p1"))), node("n", "zone", "z9", "pool", "p1"), true, 1,
		},
		{
			"with several matching terms the longest one counts",
			sel(term(in("zone", "z1")), term(in("zone", "z1"), in("pool", "p2"), exists("ssd"))), node("n", "zone", "z1", "pool", "p2", "ssd", "y"), true, 3,
		},
		{
			"a longer term that fails does not count",
			sel(term(in("zone", "z1")), term(in("zone", "z1"), in("pool", "p2"))), node("n", "zone", "z1", "pool", "p3"), true, 1,
		},
		{"labels and fields mix in one term", sel(term(in("zone", "z1"), nameIs(corev1.NodeSelectorOpIn, "n"))), node("n", "zone", "z1"), true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileNodeSelector(tt.selector)
			require.NoError(t, err)
			got, ok := s.match(tt.node)
			assert.Equal(t, tt.wantMatch, ok)
			if ok {
				assert.Equal(t, tt.wantMatched, got)
			}
		})
	}
}

func TestNodeSelectorCanonicalText(t *testing.T) {
	tests := []struct {
		name     string
		selector *corev1.NodeSelector
		want     string
	}{
		{"no selector has empty text", nil, ""},
		{
			"requirements, values and terms are sorted",
			sel(term(in("zone", "z1", "z0"), exists("a")), term(doesNotExist("b"), req("rack", corev1.NodeSelectorOpGt, "07"))),
			"!b,rack > 7 || a,zone in (z0,z1)",
		},
		{"matchFields are marked as fields", sel(term(nameIs(corev1.NodeSelectorOpNotIn, "w2"))), "field:metadata.name notin (w2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileNodeSelector(tt.selector)
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.String())
		})
	}
}
