package clustercidr

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// propertyAllocator has small ClusterCIDRs that overlap each other and a service CIDR, with
// different block sizes and one dual-stack, so random operations exhaust and free them often.
func propertyAllocator(t *testing.T) *Allocator {
	a := newTestAllocator(t, "10.0.2.0/26", "fd00::40/124")
	for _, c := range []namedSpec{
		{"a", ccSpec("10.0.0.0/22", "", 8, selecting(term(in("zone", "a"))))},
		{"b", ccSpec("10.0.0.0/23", "", 6, selecting(term(in("pool", "x")), term(exists("gpu"), in("zone", "a"))))},
		{"c", ccSpec("10.0.4.0/25", "fd00::/120", 4, selecting(term(exists("gpu"))))},
		{"d", ccSpec("10.0.0.0/21", "", 7)},
	} {
		require.NoError(t, a.AddClusterCIDR(c.name, c.spec))
	}
	return a
}

func propertyNode(i int) Node {
	n := node("n" + strconv.Itoa(i))
	if i%2 == 0 {
		n.Labels["zone"] = "a"
	}
	if i%3 == 0 {
		n.Labels["pool"] = "x"
	}
	if i%5 == 0 {
		n.Labels["gpu"] = ""
	}
	return n
}

// expectedAllocation computes by brute force what Allocate must return: the first ClusterCIDR
// in rank order whose every family has a block overlapping no used or reserved address, with
// the lowest such block per family.
func expectedAllocation(a *Allocator, n Node) (Allocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range rankFor(nil, a.ranked, n) {
		var got []netip.Prefix
		ok := true
		for f, set := range c.cc.sets {
			if set == nil {
				continue
			}
			found := false
			for c := set.first; !set.last.less(c); {
				b := set.blockAt(c)
				_, u := a.used[f].overlapping(b)
				_, r := a.reserved[f].overlapping(b)
				if !u && !r {
					got = append(got, set.prefixOf(b))
					found = true
					break
				}
				c, _ = b.last.add1()
			}
			if !found {
				ok = false
				break
			}
		}
		if ok {
			return Allocation{ClusterCIDRs: []string{c.cc.name}, PodCIDRs: got}, true
		}
	}
	return Allocation{}, false
}

// applyOps runs one operation per pair of bytes and checks the result against the brute-force
// model and the invariants after each.
func applyOps(t *testing.T, ops []byte) {
	a := propertyAllocator(t)
	for i := 0; i+1 < len(ops); i += 2 {
		n := propertyNode(int(ops[i+1] % 24))
		switch ops[i] % 5 {
		case 0, 1:
			want, ok := expectedAllocation(a, n)
			if _, held := a.Lookup(n.Name); held {
				want, ok = a.Lookup(n.Name)
			}
			got, err := a.Allocate(n)
			if !ok {
				require.ErrorIs(t, err, ErrNoCIDRAvailable, "op %d: allocate %s", i/2, n.Name)
				break
			}
			require.NoError(t, err, "op %d: allocate %s", i/2, n.Name)
			require.Equal(t, readable(want), readable(got), "op %d: allocate %s", i/2, n.Name)
		case 2, 3:
			a.Release(n.Name)
		case 4:
			// Occupy a /26 somewhere in 10.0.0.0/20: inside, across or outside the ClusterCIDRs;
			// every other time with a /124 inside or outside c's IPv6 range, which may put
			// the node's two families in two ClusterCIDRs.
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, ops[i] / 5 % 16, 64 * (ops[i+1] / 24 % 4)}), 26)
			n.PodCIDRs = []netip.Prefix{p}
			if ops[i]/80%2 == 1 {
				v6 := [16]byte{0: 0xfd, 14: ops[i+1] / 96 % 2, 15: 16 * (ops[i+1] % 16)}
				n.PodCIDRs = append(n.PodCIDRs, netip.PrefixFrom(netip.AddrFrom16(v6), 124))
			}
			_, err := a.Occupy(n)
			if err != nil && !errors.Is(err, ErrAlreadyAllocated) && !errors.Is(err, ErrCIDROutsideClusterCIDRs) {
				t.Fatalf("op %d: occupy %s %s: %v", i/2, n.Name, p, err)
			}
		}
		checkInvariants(t, a)
		checkFreeCounts(t, a)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// checkFreeCounts compares Usage with a count of free blocks by brute force.
func checkFreeCounts(t *testing.T, a *Allocator) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, cc := range a.ranked {
		for f, set := range cc.sets {
			if set == nil {
				continue
			}
			var free uint64
			for c := set.first; !set.last.less(c); {
				b := set.blockAt(c)
				_, u := a.used[f].overlapping(b)
				_, r := a.reserved[f].overlapping(b)
				if !u && !r {
					free++
				}
				c, _ = b.last.add1()
			}
			assert.Equal(t, free, set.free(&a.used[f], &a.reserved[f]), "free blocks of %s %s", cc.name, set.prefix)
		}
	}
}

func TestRandomOperationsMatchTheModelAndNeverOverlap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		ops := make([]byte, 800)
		for i := range ops {
			ops[i] = byte(rng.UintN(256))
		}
		t.Run("seed "+strconv.FormatUint(seed, 10), func(t *testing.T) { applyOps(t, ops) })
	}
}

func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 2, 1, 0, 3})
	f.Add([]byte{4, 0, 9, 5, 0, 0, 3, 0, 0, 0})
	f.Fuzz(applyOps)
}
