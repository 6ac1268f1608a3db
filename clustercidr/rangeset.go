package clustercidr

import (
	"github.com/google/btree"
)

// rangeSet is a set of addresses of one family kept as sorted, disjoint, non-adjacent spans.
//
// The allocator keeps every handed-out or occupied pod CIDR of every ClusterCIDR in one
// rangeSet per family, which is how it enforces upstream's global overlap check (a candidate
// block present in, or overlapping, any set of any ClusterCIDR is skipped) even when ClusterCIDRs
// overlap and use different block sizes. Adjacent spans are merged, so its size is the number
// of maximal used runs (about the number of holes), not the number of blocks: nodes allocated
// lowest-first pack into a few runs, and a /8 or a /48 costs nothing until it is used.
//
// The spans are in a B-tree ordered by first address, so a lookup, and an add or remove that
// touches k spans, cost O(log m + k) for m runs. A sorted slice had O(log m) lookups but
// shifted the runs above on every hole opened or closed, a memmove of up to m spans: at
// 100,000 nodes with every other one gone that was 180 µs per allocation
// (BenchmarkAllocateFragmented), and allocating into a fragmented range grew with m².
// The zero value is an empty set.
type rangeSet struct {
	tree *btree.BTreeG[span]
}

// rangeSetDegree is the B-tree's degree: nodes of up to 2×32−1 spans of 32 bytes.
const rangeSetDegree = 32

func byFirst(a, b span) bool { return a.first.less(b.first) }

// len returns the number of spans.
func (s *rangeSet) len() int {
	if s.tree == nil {
		return 0
	}
	return s.tree.Len()
}

// overlapping returns the span that overlaps t and starts lowest, if any.
func (s *rangeSet) overlapping(t span) (span, bool) {
	if s.tree == nil {
		return span{}, false
	}
	var found span
	ok := false
	// The span starting at or below t.first holds t.first if it reaches it...
	s.tree.DescendLessOrEqual(span{first: t.first}, func(x span) bool {
		found, ok = x, !x.last.less(t.first)
		return false
	})
	if ok {
		return found, true
	}
	// ...else the first span starting above t.first overlaps t if it starts within it.
	s.tree.AscendGreaterOrEqual(span{first: t.first}, func(x span) bool {
		found, ok = x, !t.last.less(x.first)
		return false
	})
	return found, ok
}

// touching returns the spans that overlap t or are adjacent to it, in order.
func (s *rangeSet) touching(t span) []span {
	if s.tree == nil {
		return nil
	}
	wide := t
	if before, ok := t.first.sub1(); ok {
		wide.first = before
	}
	if after, ok := t.last.add1(); ok {
		wide.last = after
	}
	return s.within(wide)
}

// within returns the spans that overlap t, in order.
func (s *rangeSet) within(t span) []span {
	if s.tree == nil {
		return nil
	}
	var out []span
	s.tree.DescendLessOrEqual(span{first: t.first}, func(x span) bool {
		if !x.last.less(t.first) {
			out = append(out, x)
		}
		return false
	})
	s.tree.AscendGreaterOrEqual(span{first: t.first}, func(x span) bool {
		if t.last.less(x.first) {
			return false
		}
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
		return true
	})
	return out
}

// add puts t into the set, merging it with every span it overlaps or touches.
func (s *rangeSet) add(t span) {
	if s.tree == nil {
		s.tree = btree.NewG(rangeSetDegree, byFirst)
	}
	for _, x := range s.touching(t) {
		s.tree.Delete(x)
		if x.first.less(t.first) {
			t.first = x.first
		}
		if t.last.less(x.last) {
			t.last = x.last
		}
	}
	s.tree.ReplaceOrInsert(t)
}

// remove takes every address of t out of the set, splitting spans as needed.
func (s *rangeSet) remove(t span) {
	for _, x := range s.within(t) {
		s.tree.Delete(x)
		if x.first.less(t.first) {
			end, _ := t.first.sub1() // t.first > x.first ≥ 0
			s.tree.ReplaceOrInsert(span{x.first, end})
		}
		if t.last.less(x.last) {
			start, _ := t.last.add1() // t.last < x.last ≤ max
			s.tree.ReplaceOrInsert(span{start, x.last})
		}
	}
}

// all returns every span, in order.
func (s *rangeSet) all() []span {
	if s.tree == nil {
		return nil
	}
	out := make([]span, 0, s.tree.Len())
	s.tree.Ascend(func(x span) bool { out = append(out, x); return true })
	return out
}
