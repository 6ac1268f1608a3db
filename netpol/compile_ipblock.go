package netpol

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// maxPolicyBlockEntries bounds the hash:net entries the ipBlocks of one NetworkPolicy may
// need, both families and all rules together. It is ipset's default maxelem. Each except adds
// up to one entry per prefix bit (a /128 except under ::/0 leaves 128 prefixes), so the API
// server's object size alone would let one policy ask for millions of entries: seconds of
// compile and restore on the node's only sync goroutine, and a hash:net set the kernel probes
// once per distinct prefix length on every packet. Past the bound the policy is refused
// (parsePolicyInfo) and the work done on it stops at the bound.
const maxPolicyBlockEntries = 1 << 16

// blockPrefixes turns the ipBlock peers of one rule into disjoint-or-nested prefixes of one
// family that hold exactly the addresses the rule admits, for a plain hash:net set. ok is
// false when they would number more than limit; the work done stays proportional to limit
// and the number of excepts.
//
// kube-router puts every peer's cidr in one hash:net set and each except as a nomatch entry,
// so an address excepted by one peer but inside another peer's cidr is wrongly refused (the
// NetworkPolicy API OR-s the peers of a rule). Subtracting each peer's excepts from its own
// cidr first and only then taking the union keeps the OR exact.
//
// hash:net cannot hold a /0, so a /0 left after subtraction becomes its two /1 halves, which
// cover every address of the family (kube-router's IPv6 substitution 2000::/3 + fd00::/8
// leaves link-local and multicast out).
func blockPrefixes(blocks []blockPeer, v6 bool, limit int) (prefixes []netip.Prefix, ok bool) {
	var out []netip.Prefix
	for _, b := range blocks {
		if b.cidr.Addr().Is6() != v6 {
			// A block of the other family never matches.
			continue
		}
		if out, ok = subtractExcepts(out, b.cidr, b.except, limit); !ok {
			return nil, false
		}
	}
	out = normalizePrefixes(splitWhole(out))
	return out, len(out) <= limit
}

// splitWhole replaces each /0 of ps by its two /1 halves, which hash:net can hold.
func splitWhole(ps []netip.Prefix) []netip.Prefix {
	for i, p := range ps {
		if p.Bits() == 0 {
			lo, hi := halves(p)
			ps[i] = lo
			ps = append(ps, hi)
		}
	}
	return ps
}

// subtractExcepts appends to out the prefixes covering cidr without any of excepts, in
// address order, and reports false once out would hold more than limit prefixes.
//
// It is one sweep: the excepts inside cidr are sorted and the nested ones dropped, which
// leaves disjoint ranges in address order; the gaps between them are then each cut into the
// fewest aligned prefixes. That costs O(e log e + output) for e excepts, where subtracting
// one except at a time from every piece left so far costs O(e × output): 71 s for 2,000
// IPv6 excepts under ::/0. The result is the same: the coarsest prefixes that hold no
// excepted address.
func subtractExcepts(out []netip.Prefix, cidr netip.Prefix, excepts []netip.Prefix, limit int) ([]netip.Prefix, bool) {
	inside := make([]netip.Prefix, 0, len(excepts))
	for _, e := range excepts {
		if !e.Overlaps(cidr) {
			// Another family, or outside the cidr: nothing to take away.
			continue
		}
		if e.Bits() <= cidr.Bits() {
			// The except holds the whole cidr.
			return out, true
		}
		inside = append(inside, e)
	}
	inside = normalizePrefixes(inside)
	width := cidr.Addr().BitLen()
	next, last := prefixRange(cidr)
	for _, e := range inside {
		first, end := prefixRange(e)
		if next.less(first) {
			var ok bool
			if out, ok = rangePrefixes(out, next, first.minus1(), width, limit); !ok {
				return nil, false
			}
		}
		if end == last {
			return out, true
		}
		next = end.plus1()
	}
	return rangePrefixes(out, next, last, width, limit)
}

// rangePrefixes appends to out the fewest prefixes of an address family width bits wide that
// cover the addresses first to last (inclusive): at each step the largest prefix that starts
// at first, is aligned there and ends by last. It reports false once out would hold more
// than limit prefixes.
func rangePrefixes(out []netip.Prefix, first, last addr128, width, limit int) ([]netip.Prefix, bool) {
	for {
		if len(out) >= limit {
			return nil, false
		}
		host := min(first.trailingZeros(), width)
		for host > 0 && last.less(first.or(hostMask(host))) {
			host--
		}
		out = append(out, netip.PrefixFrom(first.addr(width), width-host))
		end := first.or(hostMask(host))
		if end == last {
			return out, true
		}
		first = end.plus1()
	}
}

// addr128 is an address as a 128-bit number; an IPv4 address sits in the low 32 bits.
type addr128 struct{ hi, lo uint64 }

// prefixRange returns the first and last address of p.
func prefixRange(p netip.Prefix) (first, last addr128) {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		first = addr128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	} else {
		b := a.As16()
		first = addr128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
	}
	return first, first.or(hostMask(a.BitLen() - p.Bits()))
}

// addr returns the address of an address family width bits wide.
func (a addr128) addr(width int) netip.Addr {
	if width == 32 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(a.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

// hostMask returns the number whose low n bits are set.
func hostMask(n int) addr128 {
	switch {
	case n >= 128:
		return addr128{hi: ^uint64(0), lo: ^uint64(0)}
	case n > 64:
		return addr128{hi: 1<<(n-64) - 1, lo: ^uint64(0)}
	default:
		return addr128{lo: 1<<n - 1}
	}
}

func (a addr128) or(b addr128) addr128 { return addr128{hi: a.hi | b.hi, lo: a.lo | b.lo} }

func (a addr128) less(b addr128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// trailingZeros returns the number of trailing zero bits, 128 for zero.
func (a addr128) trailingZeros() int {
	if a.lo != 0 {
		return bits.TrailingZeros64(a.lo)
	}
	return 64 + bits.TrailingZeros64(a.hi)
}

// plus1 and minus1 wrap around; callers never step past the ends of a family.
func (a addr128) plus1() addr128 {
	lo, carry := bits.Add64(a.lo, 1, 0)
	return addr128{hi: a.hi + carry, lo: lo}
}

func (a addr128) minus1() addr128 {
	lo, borrow := bits.Sub64(a.lo, 1, 0)
	return addr128{hi: a.hi - borrow, lo: lo}
}

// halves splits p into its two prefixes one bit longer.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	b := lo.Addr().AsSlice()
	bit := p.Bits()
	b[bit/8] |= 0x80 >> (bit % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, p.Bits()+1)
}

// normalizePrefixes sorts prefixes by address then length and drops those inside another,
// so equal address sets give equal lists (and equal set names).
func normalizePrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}
