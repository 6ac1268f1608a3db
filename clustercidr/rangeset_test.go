package clustercidr

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func sp(first, last uint64) span { return span{u128{lo: first}, u128{lo: last}} }

func TestRangeSetSteps(t *testing.T) {
	// One set, one step per row; each row shows the whole set afterwards.
	type row struct {
		name   string
		add    bool
		s      span
		wantIn []span
	}
	rows := []row{
		{"adding to an empty set gives one span", true, sp(10, 19), []span{sp(10, 19)}},
		{"a span touching on the right is merged", true, sp(20, 29), []span{sp(10, 29)}},
		{"a span touching on the left is merged", true, sp(0, 9), []span{sp(0, 29)}},
		{"a distant span stays apart", true, sp(40, 49), []span{sp(0, 29), sp(40, 49)}},
		{"a span bridging two spans merges all three", true, sp(30, 39), []span{sp(0, 49)}},
		{"removing the middle splits the span", false, sp(20, 24), []span{sp(0, 19), sp(25, 49)}},
		{"removing a prefix trims the span", false, sp(0, 4), []span{sp(5, 19), sp(25, 49)}},
		{"removing across a gap trims both sides", false, sp(15, 30), []span{sp(5, 14), sp(31, 49)}},
		{"removing what is not there changes nothing", false, sp(60, 70), []span{sp(5, 14), sp(31, 49)}},
		{"an overlapping add is a union", true, sp(10, 35), []span{sp(5, 49)}},
		{"removing everything empties the set", false, sp(0, 100), []span{}},
	}
	var s rangeSet
	for i, r := range rows {
		if r.add {
			s.add(r.s)
		} else {
			s.remove(r.s)
		}
		if len(r.wantIn) == 0 {
			assert.Empty(t, s.all(), "row %d: %s", i, r.name)
		} else {
			assert.Equal(t, r.wantIn, s.all(), "row %d: %s", i, r.name)
		}
		checkCanonical(t, &s)
	}
}

func TestRangeSetEdgesOfTheAddressSpace(t *testing.T) {
	var s rangeSet
	all := span{u128{}, maxU128}
	s.add(span{u128{}, u128{lo: 5}})
	s.add(span{u128{hi: 1}, maxU128})
	s.add(all)
	assert.Equal(t, []span{all}, s.all(), "adding at address 0 and at the top merges without overflow")
	s.remove(span{u128{}, u128{lo: 0}})
	s.remove(span{maxU128, maxU128})
	assert.Equal(t, []span{{u128{lo: 1}, u128{hi: ^uint64(0), lo: ^uint64(0) - 1}}}, s.all(), "removing both ends trims without overflow")
}

// TestRangeSetMatchesBitmap compares random adds and removes with a plain bitmap.
func TestRangeSetMatchesBitmap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s rangeSet
	var model [256]bool
	for i := range 5000 {
		a, b := rng.IntN(256), rng.IntN(256)
		if a > b {
			a, b = b, a
		}
		add := rng.IntN(2) == 0
		if add {
			s.add(sp(uint64(a), uint64(b)))
		} else {
			s.remove(sp(uint64(a), uint64(b)))
		}
		for x := a; x <= b; x++ {
			model[x] = add
		}
		checkCanonical(t, &s)
		for x := range 256 {
			q := sp(uint64(x), uint64(x))
			_, got := s.overlapping(q)
			if got != model[x] {
				t.Fatalf("step %d: address %d: set says %v, bitmap %v", i, x, got, model[x])
			}
		}
	}
}

func TestU128(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"an IPv4 address converts to its 32-bit value", addrToU128(netip.MustParseAddr("10.0.0.1")), u128{lo: 0x0a000001}},
		{"an IPv6 address converts both halves", addrToU128(netip.MustParseAddr("2001:db8::1")), u128{hi: 0x20010db800000000, lo: 1}},
		{"an IPv6 address converts back", u128{hi: 0x20010db800000000, lo: 1}.addr(ipv6), netip.MustParseAddr("2001:db8::1")},
		{"an IPv4 address converts back", u128{lo: 0x0a000001}.addr(ipv4), netip.MustParseAddr("10.0.0.1")},
		{"a mask of 70 bits spans both halves", lowMask(70), u128{hi: 0x3f, lo: ^uint64(0)}},
		{"a mask of 128 bits is all ones", lowMask(128), maxU128},
		{"a mask of 0 bits is zero", lowMask(0), u128{}},
		{"shifting right by 64 moves hi to lo", u128{hi: 5}.shr(64), u128{lo: 5}},
		{"shifting right by 4 carries bits from hi", u128{hi: 1}.shr(4), u128{lo: 1 << 60}},
		{"the IPv6 span of a /120 has 256 addresses", spanOf(pfx("2001:db8::/120")), span{u128{hi: 0x20010db800000000}, u128{hi: 0x20010db800000000, lo: 255}}},
		{"a count above 2^64 saturates", u128{hi: 1}.saturate(), ^uint64(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.got)
		})
	}
	_, ok := maxU128.add1()
	assert.False(t, ok, "adding one to the top of the space reports overflow")
	_, ok = u128{}.sub1()
	assert.False(t, ok, "subtracting one from zero reports underflow")
	v, ok := u128{lo: ^uint64(0)}.add1()
	assert.True(t, ok)
	assert.Equal(t, u128{hi: 1}, v, "adding one carries into hi")
}
