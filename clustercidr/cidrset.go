package clustercidr

import (
	"net/netip"
)

// cidrSet hands out the per-node blocks of one family of one ClusterCIDR: blocks of hostBits
// host bits (mask = 32−perNodeHostBits or 128−perNodeHostBits, as the ClusterCIDR API defines) carved from prefix.
//
// It holds no record of its own allocations. What is taken lives in the allocator's global
// rangeSet per family (so overlapping ClusterCIDRs never hand out the same addresses, as upstream)
// and what is reserved for Services in a second one; the set only keeps a cursor. Memory is
// therefore independent of the number of blocks, which matters for IPv6, where a /48 with
// 64 host bits already has 65,536 blocks and a /8 with 4 host bits has 2^116.
type cidrSet struct {
	fam      family
	prefix   netip.Prefix
	hostBits int
	first    u128 // first address of prefix
	last     u128 // last address of prefix
	mask     u128 // host bits of one block
	// next is the start of the lowest block that may be free: every block below it overlaps
	// a used or reserved range. Allocation moves it up, any release inside the prefix moves
	// it down, so the lowest-free search does not rescan the packed bottom of the range.
	next u128
}

// newCIDRSet returns the set for a masked prefix; hostBits must fit it (see validateSpec).
func newCIDRSet(prefix netip.Prefix, hostBits int) *cidrSet {
	sp := spanOf(prefix)
	return &cidrSet{
		fam:      familyOf(prefix.Addr()),
		prefix:   prefix,
		hostBits: hostBits,
		first:    sp.first,
		last:     sp.last,
		mask:     lowMask(hostBits),
		next:     sp.first,
	}
}

// span returns the set's whole address range.
func (s *cidrSet) span() span { return span{s.first, s.last} }

// sizeLog2 is log2 of the number of blocks: upstream's MaxCIDRs = 2^(nodeMask − clusterMask).
func (s *cidrSet) sizeLog2() int { return s.fam.bits() - s.hostBits - s.prefix.Bits() }

// blockAt returns the block that starts at the aligned address start.
func (s *cidrSet) blockAt(start u128) span { return span{start, start.or(s.mask)} }

// prefixOf returns a block as a prefix.
func (s *cidrSet) prefixOf(b span) netip.Prefix {
	return netip.PrefixFrom(b.first.addr(s.fam), s.fam.bits()-s.hostBits)
}

// contains reports whether p, of any length, lies inside the set's prefix.
func (s *cidrSet) contains(p netip.Prefix) bool {
	return familyOf(p.Addr()) == s.fam && p.Bits() >= s.prefix.Bits() && s.prefix.Contains(p.Addr())
}

// findFree returns the lowest block that overlaps neither used nor reserved, in
// O(k log m) for k used runs skipped above the cursor and m runs in total. Blocks are
// returned in address order (deterministic; upstream searched round-robin).
func (s *cidrSet) findFree(used, reserved *rangeSet) (span, bool) {
	c := s.next
	for !s.last.less(c) {
		b := s.blockAt(c)
		blocker, hit := used.overlapping(b)
		if r, ok := reserved.overlapping(b); ok && (!hit || blocker.last.less(r.last)) {
			blocker, hit = r, true
		}
		if !hit {
			s.next = c
			return b, true
		}
		// Every block between b and the one holding blocker.last lies inside blocker (it
		// starts at or before b.last), so the search resumes at the first aligned address
		// after it.
		after, ok := blocker.last.add1()
		if !ok {
			break
		}
		c, ok = s.alignUp(after)
		if !ok {
			break
		}
	}
	// All blocks from the cursor up are taken; park the cursor on the last block so the next
	// search costs one lookup, and a release (lower) brings it back down.
	s.next = s.last.andNot(s.mask)
	return span{}, false
}

// alignUp returns the first block start at or after x, and false on address-space overflow.
func (s *cidrSet) alignUp(x u128) (u128, bool) {
	if x.andNot(s.mask) == x {
		return x, true
	}
	return x.or(s.mask).add1()
}

// taken records that b, a block findFree returned, is now used: the cursor moves past it,
// since every block below b was already unavailable.
func (s *cidrSet) taken(b span) {
	if next, ok := b.last.add1(); ok && !s.last.less(next) {
		s.next = next
	}
}

// lower tells the set that the addresses of t became free, so the cursor must not be above
// the block that holds the lowest of them.
func (s *cidrSet) lower(t span) {
	if !t.overlaps(s.span()) {
		return
	}
	start := t.first
	if start.less(s.first) {
		start = s.first
	}
	if start = start.andNot(s.mask); start.less(s.next) {
		s.next = start
	}
}

// free counts the blocks that overlap neither used nor reserved, saturating at MaxUint64.
// It walks the runs inside the prefix, so it is O(m) and meant for metrics, not the hot path.
func (s *cidrSet) free(used, reserved *rangeSet) uint64 {
	total, _ := lowMask(s.sizeLog2()).add1() // sizeLog2 ≤ 124: no overflow
	var taken u128                           // distinct blocks touched by used ∪ reserved
	var lastBlock u128                       // index of the last block counted
	counted := false
	us, rs := used.within(s.span()), reserved.within(s.span())
	ui, ri := 0, 0
	for {
		// Merge the two sorted span lists by first address.
		var t span
		switch {
		case ui < len(us) && (ri >= len(rs) || !rs[ri].first.less(us[ui].first)):
			t = us[ui]
			ui++
		case ri < len(rs):
			t = rs[ri]
			ri++
		default:
			return total.sub(taken).saturate()
		}
		if s.last.less(t.first) {
			return total.sub(taken).saturate()
		}
		if t.first.less(s.first) {
			t.first = s.first
		}
		if s.last.less(t.last) {
			t.last = s.last
		}
		lo := t.first.sub(s.first).shr(s.hostBits)
		hi := t.last.sub(s.first).shr(s.hostBits)
		if counted && !lastBlock.less(lo) {
			if !lastBlock.less(hi) {
				continue
			}
			lo, _ = lastBlock.add1()
		}
		n, _ := hi.sub(lo).add1() // hi−lo < 2^124
		taken = taken.add(n)
		lastBlock, counted = hi, true
	}
}

// blocks returns the number of blocks, saturating at MaxUint64.
func (s *cidrSet) blocks() uint64 {
	n, _ := lowMask(s.sizeLog2()).add1()
	return n.saturate()
}
