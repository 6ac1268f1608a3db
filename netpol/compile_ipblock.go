package netpol

import (
	"cmp"
	"net/netip"
	"slices"
)

// blockPrefixes turns the ipBlock peers of one rule into disjoint-or-nested prefixes of one
// family that hold exactly the addresses the rule admits, for a plain hash:net set.
//
// kube-router puts every peer's cidr in one hash:net set and each except as a nomatch entry,
// so an address excepted by one peer but inside another peer's cidr is wrongly refused (spec
// §1.6 "except merge"; §2.4 says peers are OR-ed). Subtracting each peer's excepts from its
// own cidr first and only then taking the union keeps the OR exact.
//
// hash:net cannot hold a /0 (spec §1.5), so a /0 left after subtraction becomes its two /1
// halves, which cover every address of the family (kube-router's IPv6 substitution 2000::/3 +
// fd00::/8 leaves link-local and multicast out).
func blockPrefixes(blocks []blockPeer, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, b := range blocks {
		if b.cidr.Addr().Is6() != v6 {
			// Spec §2.4: a block of the other family never matches.
			continue
		}
		parts := []netip.Prefix{b.cidr}
		for _, e := range b.except {
			if e.Addr().Is6() != v6 {
				continue
			}
			var next []netip.Prefix
			for _, p := range parts {
				next = append(next, subtractPrefix(p, e)...)
			}
			parts = next
		}
		out = append(out, parts...)
	}
	var split []netip.Prefix
	for _, p := range out {
		if p.Bits() == 0 {
			lo, hi := halves(p)
			split = append(split, lo, hi)
			continue
		}
		split = append(split, p)
	}
	return normalizePrefixes(split)
}

// subtractPrefix returns the prefixes covering p without e.
func subtractPrefix(p, e netip.Prefix) []netip.Prefix {
	switch {
	case !p.Overlaps(e):
		return []netip.Prefix{p}
	case e.Bits() <= p.Bits():
		// e contains p.
		return nil
	}
	// e lies strictly inside p: keep the half without e whole, recurse into the other.
	lo, hi := halves(p)
	if lo.Contains(e.Addr()) {
		return append(subtractPrefix(lo, e), hi)
	}
	return append([]netip.Prefix{lo}, subtractPrefix(hi, e)...)
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
