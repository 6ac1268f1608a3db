package clustercidr

import (
	"math"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// takeN allocates n blocks from set, as the allocator does, and returns them.
func takeN(t testing.TB, set *cidrSet, used, reserved *rangeSet, n int) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for range n {
		b, ok := set.findFree(used, reserved)
		require.True(t, ok, "set %s ran out after %d blocks", set.prefix, len(out))
		used.add(b)
		set.taken(b)
		out = append(out, set.prefixOf(b))
	}
	return out
}

func TestCIDRSetHandsOutLowestFreeBlockFirst(t *testing.T) {
	var used, reserved rangeSet
	set := newCIDRSet(pfx("10.0.0.0/22"), 8)
	assert.Equal(t, []string{"10.0.0.0/24", "10.0.1.0/24"}, strs(takeN(t, set, &used, &reserved, 2)))

	// A hole at the bottom is refilled before the top is used.
	used.remove(spanOf(pfx("10.0.0.0/24")))
	set.lower(spanOf(pfx("10.0.0.0/24")))
	assert.Equal(t, []string{"10.0.0.0/24", "10.0.2.0/24", "10.0.3.0/24"}, strs(takeN(t, set, &used, &reserved, 3)))

	_, ok := set.findFree(&used, &reserved)
	assert.False(t, ok, "a full set has no free block")
	assert.Equal(t, uint64(0), set.free(&used, &reserved))

	// Freeing the top block after exhaustion finds it again.
	used.remove(spanOf(pfx("10.0.3.0/24")))
	set.lower(spanOf(pfx("10.0.3.0/24")))
	assert.Equal(t, []string{"10.0.3.0/24"}, strs(takeN(t, set, &used, &reserved, 1)))
}

func TestCIDRSetSkipsUsedAndReservedRangesOfAnySize(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		hostBits int
		used     []string
		reserved []string
		want     []string // the blocks handed out until the set is full
	}{
		{
			name:   "a reserved range inside one block makes the whole block unavailable",
			prefix: "10.43.0.0/22", hostBits: 8,
			reserved: []string{"10.43.1.128/25"},
			want:     []string{"10.43.0.0/24", "10.43.2.0/24", "10.43.3.0/24"},
		},
		{
			name:   "a used range larger than a block skips every block it covers",
			prefix: "10.0.0.0/21", hostBits: 8,
			used: []string{"10.0.0.0/22"},
			want: []string{"10.0.4.0/24", "10.0.5.0/24", "10.0.6.0/24", "10.0.7.0/24"},
		},
		{
			name:   "small used ranges of another ClusterCIDR block the big blocks they touch",
			prefix: "10.0.0.0/21", hostBits: 9,
			used: []string{"10.0.0.16/28", "10.0.3.240/28", "10.0.6.0/30"},
			want: []string{"10.0.4.0/23"},
		},
		{
			name:   "a reserved range covering the set leaves nothing",
			prefix: "10.43.0.0/24", hostBits: 4,
			reserved: []string{"10.0.0.0/8"},
		},
		{
			name:   "blocks at the very top of the IPv6 space are handed out without overflow",
			prefix: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffc0/122", hostBits: 4,
			used: []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffd0/124"},
			want: []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffc0/124", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffe0/124", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"},
		},
		{
			name:   "the whole IPv6 space can be one block",
			prefix: "::/0", hostBits: 128,
			want: []string{"::/0"},
		},
		{
			name:   "the whole IPv4 space can be one block",
			prefix: "0.0.0.0/0", hostBits: 32,
			want: []string{"0.0.0.0/0"},
		},
		{
			name:   "a used range ending at the top of the IPv6 space exhausts the set",
			prefix: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120", hostBits: 4,
			used: []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/121", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80/121"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var used, reserved rangeSet
			for _, p := range tt.used {
				used.add(spanOf(pfx(p)))
			}
			for _, p := range tt.reserved {
				reserved.add(spanOf(pfx(p)))
			}
			set := newCIDRSet(pfx(tt.prefix), tt.hostBits)
			assert.Equal(t, uint64(len(tt.want)), set.free(&used, &reserved), "free before")
			var got []string
			for {
				b, ok := set.findFree(&used, &reserved)
				if !ok {
					break
				}
				used.add(b)
				set.taken(b)
				got = append(got, set.prefixOf(b).String())
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, uint64(0), set.free(&used, &reserved), "free after")
		})
	}
}

func TestCIDRSetCounts(t *testing.T) {
	tests := []struct {
		name       string
		prefix     string
		hostBits   int
		used       []string
		wantBlocks uint64
		wantFree   uint64
	}{
		{"an IPv4 /16 with 8 host bits has 256 blocks", "10.100.0.0/16", 8, nil, 256, 256},
		{"an IPv6 /48 with 64 host bits has 65,536 blocks", "fd00:1::/48", 64, []string{"fd00:1::/64", "fd00:1:0:5::/64"}, 65536, 65534},
		{"an IPv6 /8 with 4 host bits saturates the count", "fd00::/8", 4, []string{"fd00::/120"}, math.MaxUint64, math.MaxUint64},
		{"two used ranges inside one block count once", "10.0.0.0/16", 8, []string{"10.0.3.0/26", "10.0.3.128/26"}, 256, 255},
		{"used ranges outside the prefix do not count", "10.0.0.0/16", 8, []string{"10.1.0.0/16", "9.255.255.0/24"}, 256, 256},
		{"a used range straddling the start counts only its part inside", "10.0.1.0/24", 4, []string{"10.0.0.0/23"}, 16, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var used, reserved rangeSet
			for _, p := range tt.used {
				used.add(spanOf(pfx(p)))
			}
			set := newCIDRSet(pfx(tt.prefix), tt.hostBits)
			assert.Equal(t, tt.wantBlocks, set.blocks())
			assert.Equal(t, tt.wantFree, set.free(&used, &reserved))
		})
	}
}

// TestHugeIPv6RangesUseMemoryForUsedBlocksOnly allocates from ranges with 2^116 and 2^64 blocks:
// state grows with what is used, packed lowest-first into one span, never with the range.
func TestHugeIPv6RangesUseMemoryForUsedBlocksOnly(t *testing.T) {
	a := newTestAllocator(t)
	require.NoError(t, a.AddClusterCIDR("huge", ccSpec("", "fd00::/8", 4)))
	require.NoError(t, a.AddClusterCIDR("wide", ccSpec("", "2001:db8::/32", 32, selecting(term(exists("wide")))))) // 2^64 blocks

	for i := range 10000 {
		got, err := a.Allocate(node(nodeName(i)))
		require.NoError(t, err)
		if i == 0 || i == 9999 {
			want := netip.PrefixFrom(u128{hi: 0xfd00 << 48, lo: uint64(i) << 4}.addr(ipv6), 124)
			assert.Equal(t, readable(alloc("huge", want.String())), readable(got))
		}
	}
	assert.Equal(t, 1, a.used[ipv6].len(), "10,000 lowest-first blocks form one used span")

	perAlloc := testing.AllocsPerRun(100, func() {
		got, err := a.Allocate(node("w", "wide", ""))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.ClusterCIDRs) != 1 || got.ClusterCIDRs[0] != "wide" {
			t.Fatalf("got %v, want a block of wide", got)
		}
		a.Release("w")
	})
	assert.LessOrEqual(t, perAlloc, 12.0, "allocating from a range of 2^64 blocks costs a few small allocations, not a bitmap")

	u, ok := a.Usage("huge")
	require.True(t, ok)
	assert.Equal(t, readable([]Usage{{Prefix: pfx("fd00::/8"), BlockBits: 124, Blocks: math.MaxUint64, Free: math.MaxUint64}}), readable(u))
}

func nodeName(i int) string { return "node-" + strconv.Itoa(i) }
