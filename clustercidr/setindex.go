package clustercidr

import (
	"slices"
)

// setIndex finds the cidrSets of one family whose range overlaps a span, without visiting
// every ClusterCIDR: a release must lower the cursor of each such set (cidrSet.lower), and
// with one ClusterCIDR per zone or pool a walk over all of them made every release cost
// O(ClusterCIDRs). Sets are kept per prefix length, sorted by first address; prefixes of one
// length are equal or disjoint, so the sets overlapping a span are one run of each list, and
// a cluster uses few lengths.
type setIndex struct {
	byLen map[int][]*cidrSet
}

func byFirstAddress(s *cidrSet, x u128) int { return s.first.cmp(x) }

// add files s.
func (x *setIndex) add(s *cidrSet) {
	if x.byLen == nil {
		x.byLen = map[int][]*cidrSet{}
	}
	l := s.prefix.Bits()
	i, _ := slices.BinarySearchFunc(x.byLen[l], s.first, byFirstAddress)
	x.byLen[l] = slices.Insert(x.byLen[l], i, s)
}

// remove forgets s.
func (x *setIndex) remove(s *cidrSet) {
	l := s.prefix.Bits()
	if x.byLen[l] = slices.DeleteFunc(x.byLen[l], func(c *cidrSet) bool { return c == s }); len(x.byLen[l]) == 0 {
		delete(x.byLen, l)
	}
}

// overlapping calls f for every set of family fam whose range overlaps t.
func (x *setIndex) overlapping(fam family, t span, f func(*cidrSet)) {
	for l, sets := range x.byLen {
		// The lowest prefix of length l that can overlap t is the one holding t.first.
		from := t.first.andNot(lowMask(fam.bits() - l))
		i, _ := slices.BinarySearchFunc(sets, from, byFirstAddress)
		for ; i < len(sets) && !t.last.less(sets[i].first); i++ {
			f(sets[i])
		}
	}
}
