package clustercidr

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// family indexes the per-family state of the allocator. A ClusterCIDR has at most one prefix
// per family (its spec.ipv4 and spec.ipv6).
type family int

const (
	ipv4 family = iota
	ipv6
	numFamilies
)

// bits is the address length of the family.
func (f family) bits() int {
	if f == ipv4 {
		return 32
	}
	return 128
}

func (f family) String() string {
	if f == ipv4 {
		return "IPv4"
	}
	return "IPv6"
}

// familyOf returns the family of an address that is not IPv4-mapped IPv6 (callers reject those).
func familyOf(a netip.Addr) family {
	if a.Is4() {
		return ipv4
	}
	return ipv6
}

// u128 is an address as a 128-bit unsigned integer (IPv4 in the low 32 bits), so one piece of
// arithmetic serves both families, and IPv6 ranges far larger than 2^64 need no big.Int.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{math.MaxUint64, math.MaxUint64}

func addrToU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr converts back; v must be within the family's address space.
func (v u128) addr(f family) netip.Addr {
	if f == ipv4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], v.hi)
	binary.BigEndian.PutUint64(b[8:], v.lo)
	return netip.AddrFrom16(b)
}

func (v u128) cmp(w u128) int {
	switch {
	case v.hi < w.hi:
		return -1
	case v.hi > w.hi:
		return 1
	case v.lo < w.lo:
		return -1
	case v.lo > w.lo:
		return 1
	}
	return 0
}

func (v u128) less(w u128) bool { return v.cmp(w) < 0 }

// add1 returns v+1 and false when that wraps past 2^128-1.
func (v u128) add1() (u128, bool) {
	lo, carry := bits.Add64(v.lo, 1, 0)
	hi, over := bits.Add64(v.hi, 0, carry)
	return u128{hi, lo}, over == 0
}

// sub1 returns v-1 and false when v is zero.
func (v u128) sub1() (u128, bool) {
	lo, borrow := bits.Sub64(v.lo, 1, 0)
	hi, under := bits.Sub64(v.hi, 0, borrow)
	return u128{hi, lo}, under == 0
}

func (v u128) sub(w u128) u128 {
	lo, borrow := bits.Sub64(v.lo, w.lo, 0)
	hi, _ := bits.Sub64(v.hi, w.hi, borrow)
	return u128{hi, lo}
}

func (v u128) add(w u128) u128 {
	lo, carry := bits.Add64(v.lo, w.lo, 0)
	hi, _ := bits.Add64(v.hi, w.hi, carry)
	return u128{hi, lo}
}

func (v u128) or(w u128) u128     { return u128{v.hi | w.hi, v.lo | w.lo} }
func (v u128) andNot(w u128) u128 { return u128{v.hi &^ w.hi, v.lo &^ w.lo} }

// shr shifts right by n (0 ≤ n ≤ 128).
func (v u128) shr(n int) u128 {
	switch {
	case n >= 128:
		return u128{}
	case n >= 64:
		return u128{lo: v.hi >> (n - 64)}
	case n == 0:
		return v
	}
	return u128{hi: v.hi >> n, lo: v.lo>>n | v.hi<<(64-n)}
}

// saturate returns v as a uint64, or MaxUint64 when it does not fit: block counts of IPv6
// ranges can exceed 2^64 and are only ever reported, never iterated.
func (v u128) saturate() uint64 {
	if v.hi != 0 {
		return math.MaxUint64
	}
	return v.lo
}

// lowMask has the n low bits set (0 ≤ n ≤ 128).
func lowMask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n >= 128:
		return maxU128
	case n >= 64:
		return u128{hi: 1<<(n-64) - 1, lo: math.MaxUint64}
	}
	return u128{lo: 1<<n - 1}
}

// span is an inclusive address range [first, last] within one family.
type span struct{ first, last u128 }

// spanOf returns the addresses of a masked prefix.
func spanOf(p netip.Prefix) span {
	first := addrToU128(p.Addr())
	return span{first, first.or(lowMask(familyOf(p.Addr()).bits() - p.Bits()))}
}

func (s span) overlaps(t span) bool { return !s.last.less(t.first) && !t.last.less(s.first) }
