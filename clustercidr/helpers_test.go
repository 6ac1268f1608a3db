package clustercidr

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// Fixture builders: small functions plus tweaks, no long literals.

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func pfxs(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = pfx(s)
	}
	return out
}

// node builds a Node from a name and key, value label pairs.
func node(name string, kv ...string) Node {
	n := Node{Name: name, Labels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

// withCIDRs returns n with pod CIDRs set.
func withCIDRs(n Node, cidrs ...string) Node {
	n.PodCIDRs = pfxs(cidrs...)
	return n
}

// alloc is an Allocation from the ClusterCIDR cc, or from none if cc is "".
func alloc(cc string, cidrs ...string) Allocation {
	if cc == "" {
		return Allocation{PodCIDRs: pfxs(cidrs...)}
	}
	return allocFrom([]string{cc}, cidrs...)
}

// allocFrom is an Allocation whose CIDRs belong to the ClusterCIDRs ccs.
func allocFrom(ccs []string, cidrs ...string) Allocation {
	return Allocation{ClusterCIDRs: ccs, PodCIDRs: pfxs(cidrs...)}
}

type specTweak func(*ClusterCIDRSpec)

// ccSpec builds a spec; "" leaves a family out.
func ccSpec(v4, v6 string, hostBits int32, tweaks ...specTweak) ClusterCIDRSpec {
	s := ClusterCIDRSpec{IPv4: v4, IPv6: v6, PerNodeHostBits: hostBits}
	for _, tw := range tweaks {
		tw(&s)
	}
	return s
}

// selecting sets a selector with the given OR-ed terms.
func selecting(terms ...corev1.NodeSelectorTerm) specTweak {
	return func(s *ClusterCIDRSpec) {
		s.NodeSelector = &corev1.NodeSelector{NodeSelectorTerms: terms}
	}
}

// term builds one term; requirements made by field() go to matchFields.
func term(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	var t corev1.NodeSelectorTerm
	for _, r := range reqs {
		if r.Key == nodeNameField {
			t.MatchFields = append(t.MatchFields, r)
		} else {
			t.MatchExpressions = append(t.MatchExpressions, r)
		}
	}
	return t
}

func req(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func in(key string, values ...string) corev1.NodeSelectorRequirement {
	return req(key, corev1.NodeSelectorOpIn, values...)
}

func notIn(key string, values ...string) corev1.NodeSelectorRequirement {
	return req(key, corev1.NodeSelectorOpNotIn, values...)
}

func exists(key string) corev1.NodeSelectorRequirement {
	return req(key, corev1.NodeSelectorOpExists)
}

func doesNotExist(key string) corev1.NodeSelectorRequirement {
	return req(key, corev1.NodeSelectorOpDoesNotExist)
}

func nameIs(op corev1.NodeSelectorOperator, name string) corev1.NodeSelectorRequirement {
	return req(nodeNameField, op, name)
}

// newTestAllocator returns an allocator with the given service CIDRs.
func newTestAllocator(t testing.TB, service ...string) *Allocator {
	t.Helper()
	a, err := NewAllocator(pfxs(service...))
	require.NoError(t, err)
	return a
}

// Sequenced tables: each row is one step on one allocator.

type opKind int

const (
	opAdd      opKind = iota // AddClusterCIDR(cc, spec)
	opDelete                 // DeleteClusterCIDR(cc); want is the []string of nodes
	opAllocate               // Allocate(node); want is an Allocation
	opOccupy                 // Occupy(node); want is an Allocation
	opRelease                // Release(node.Name); want is an Allocation, wantErr unused
	opUsers                  // NodesUsing(cc); want is the []string of nodes
)

type step struct {
	name    string
	op      opKind
	cc      string
	spec    ClusterCIDRSpec
	node    Node
	want    any
	wantErr error
}

func (s step) apply(a *Allocator) (any, error) {
	switch s.op {
	case opAdd:
		return nil, a.AddClusterCIDR(s.cc, s.spec)
	case opDelete:
		return a.DeleteClusterCIDR(s.cc), nil
	case opAllocate:
		return a.Allocate(s.node)
	case opOccupy:
		return a.Occupy(s.node)
	case opRelease:
		got, ok := a.Release(s.node.Name)
		if !ok {
			return nil, errors.New("release of an unknown node")
		}
		return got, nil
	case opUsers:
		return a.NodesUsing(s.cc), nil
	}
	panic("unknown op")
}

// runSteps applies the steps in order to a. For each it checks the result, that a failed
// step left no trace, that its inputs were not modified and that the invariants hold.
func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		before := snapshot(a)
		nodeIn := cloneNode(s.node)
		var specIn ClusterCIDRSpec
		if s.spec.NodeSelector != nil {
			specIn = s.spec
			specIn.NodeSelector = s.spec.NodeSelector.DeepCopy()
		} else {
			specIn = s.spec
		}

		got, err := s.apply(a)

		if s.wantErr != nil {
			require.ErrorIs(t, err, s.wantErr, "step %d: %s", i, s.name)
			// Occupy holds CIDRs outside every ClusterCIDR anyway (see Occupy).
			if !errors.Is(s.wantErr, ErrCIDROutsideClusterCIDRs) {
				assert.Equal(t, before, snapshot(a), "step %d: %s: the failed step left a trace", i, s.name)
			}
		} else {
			require.NoError(t, err, "step %d: %s", i, s.name)
		}
		if s.want != nil {
			assert.Equal(t, readable(s.want), readable(got), "step %d: %s", i, s.name)
		}
		assert.Equal(t, nodeIn, s.node, "step %d: %s: the node was modified", i, s.name)
		assert.Equal(t, specIn, s.spec, "step %d: %s: the spec was modified", i, s.name)
		checkInvariants(t, a)
	}
}

func cloneNode(n Node) Node {
	return Node{Name: n.Name, Labels: maps.Clone(n.Labels), PodCIDRs: slices.Clone(n.PodCIDRs)}
}

// state is what the allocator shows; cursors are a search optimisation and left out.
type state struct {
	Nodes        map[string]Allocation
	Used         [numFamilies][]span
	ClusterCIDRs map[string]ccState
}

type ccState struct {
	Terminating bool
	Nodes       []string
}

func snapshot(a *Allocator) state {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := state{Nodes: map[string]Allocation{}, ClusterCIDRs: map[string]ccState{}}
	for name, h := range a.nodes {
		st.Nodes[name] = h.allocation()
	}
	for f := range a.used {
		st.Used[f] = orNil(a.used[f].all())
	}
	for name, cc := range a.byName {
		st.ClusterCIDRs[name] = ccState{cc.terminating, slices.Sorted(maps.Keys(cc.nodes))}
	}
	return st
}

// checkInvariants verifies what must hold after every operation:
//   - no two nodes hold overlapping CIDRs;
//   - the used range sets are canonical and equal the union of the nodes' CIDRs;
//   - attribution is consistent and attributed CIDRs lie in their ClusterCIDR;
//   - ranked is sorted and holds exactly the known ClusterCIDRs;
//   - for sets of up to 4096 blocks, every block below the cursor is unavailable.
func checkInvariants(t *testing.T, a *Allocator) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()

	type owned struct {
		node string
		p    netip.Prefix
	}
	var all []owned
	var want [numFamilies]rangeSet
	for name, h := range a.nodes {
		for _, p := range h.prefixes {
			all = append(all, owned{name, p})
			want[familyOf(p.Addr())].add(spanOf(p))
		}
		require.Len(t, h.owners, len(h.prefixes), "node %s", name)
		for i, cc := range h.owners {
			if cc == nil {
				assert.Contains(t, a.unattributed, name)
				continue
			}
			assert.Contains(t, cc.nodes, name)
			assert.True(t, cc.containsAll(h.prefixes[i]), "node %s: %v outside %s", name, h.prefixes[i], cc.name)
			assert.Same(t, cc, a.byName[cc.name], "node %s attributed to a forgotten ClusterCIDR", name)
		}
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			assert.False(t, all[i].p.Overlaps(all[j].p), "%s of %s overlaps %s of %s", all[i].p, all[i].node, all[j].p, all[j].node)
		}
	}
	for f := range a.used {
		assert.Equal(t, orNil(want[f].all()), orNil(a.used[f].all()), "used %s", family(f))
		checkCanonical(t, &a.used[f])
	}
	for name, h := range a.unattributed {
		assert.Same(t, h, a.nodes[name])
		assert.Contains(t, h.owners, (*clusterCIDR)(nil), "node %s is attributed in full", name)
	}
	assert.Len(t, a.ranked, len(a.byName))
	assert.True(t, slices.IsSortedFunc(a.ranked, compareStatic), "ranked is not sorted")
	for _, cc := range a.ranked {
		assert.Same(t, cc, a.byName[cc.name])
		for n := range cc.nodes {
			assert.Contains(t, a.nodes[n].owners, cc, "node %s", n)
		}
		for f, set := range cc.sets {
			if set == nil || set.sizeLog2() > 12 {
				continue
			}
			for c := set.first; c.less(set.next); {
				b := set.blockAt(c)
				_, u := a.used[f].overlapping(b)
				_, r := a.reserved[f].overlapping(b)
				assert.True(t, u || r, "%s: block %s below the cursor is free", cc.name, set.prefixOf(b))
				var ok bool
				if c, ok = b.last.add1(); !ok {
					break
				}
			}
		}
	}
}

func checkCanonical(t *testing.T, s *rangeSet) {
	t.Helper()
	spans := s.all()
	for i, sp := range spans {
		assert.False(t, sp.last.less(sp.first), "span %d reversed", i)
		if i > 0 {
			prev := spans[i-1]
			next, _ := prev.last.add1()
			assert.True(t, next.less(sp.first), "spans %d and %d overlap or touch", i-1, i)
		}
	}
}

// readable turns netip values into text so that failures print a legible diff (testify
// prints netip.Prefix as its internal fields).
func readable(v any) any {
	switch v := v.(type) {
	case Allocation:
		return struct {
			ClusterCIDRs []string
			PodCIDRs     []string
		}{v.ClusterCIDRs, strs(v.PodCIDRs)}
	case []Allocation:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = readable(x)
		}
		return out
	case []netip.Prefix:
		return strs(v)
	case []Usage:
		out := make([]string, len(v))
		for i, u := range v {
			out[i] = fmt.Sprintf("%s /%d blocks=%d free=%d", u.Prefix, u.BlockBits, u.Blocks, u.Free)
		}
		return out
	}
	return v
}

func strs(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func orNil(s []span) []span {
	if len(s) == 0 {
		return nil
	}
	return s
}
