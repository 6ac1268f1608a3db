package netpol

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// naiveBlockPrefixes is the subtraction blockPrefixes replaced, kept as the reference of the
// property test: each except is taken from every piece left so far, which costs the product
// of the excepts and the output.
func naiveBlockPrefixes(blocks []blockPeer, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, b := range blocks {
		if b.cidr.Addr().Is6() != v6 {
			continue
		}
		parts := []netip.Prefix{b.cidr}
		for _, e := range b.except {
			if e.Addr().Is6() != v6 {
				continue
			}
			var next []netip.Prefix
			for _, p := range parts {
				next = append(next, naiveSubtract(p, e)...)
			}
			parts = next
		}
		out = append(out, parts...)
	}
	return normalizePrefixes(splitWhole(out))
}

// naiveSubtract returns the prefixes covering p without e.
func naiveSubtract(p, e netip.Prefix) []netip.Prefix {
	switch {
	case !p.Overlaps(e):
		return []netip.Prefix{p}
	case e.Bits() <= p.Bits():
		return nil
	}
	lo, hi := halves(p)
	if lo.Contains(e.Addr()) {
		return append(naiveSubtract(lo, e), hi)
	}
	return append([]netip.Prefix{lo}, naiveSubtract(hi, e)...)
}

// randomPrefix returns a random prefix bits long that overlaps region.
func randomPrefix(r *rand.Rand, region netip.Prefix, bits int) netip.Prefix {
	b := region.Addr().AsSlice()
	for i := region.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, bits).Masked()
}

// randomExcepts returns n random /32 (IPv4) or /128 (IPv6) excepts: each cuts the most
// prefixes out of a wide cidr, the worst case of the subtraction.
func randomExcepts(n int, v6 bool) []netip.Prefix {
	r := rand.New(rand.NewPCG(uint64(n), 15))
	region := netip.MustParsePrefix("0.0.0.0/0")
	if v6 {
		region = netip.MustParsePrefix("::/0")
	}
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = randomPrefix(r, region, region.Addr().BitLen())
	}
	return out
}

// TestBlockPrefixesMatchesNaiveSubtraction compares the one-sweep subtraction with the naive
// one on random blocks whose excepts nest, repeat, touch, hold the cidr or lie outside it.
func TestBlockPrefixesMatchesNaiveSubtraction(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2))
	for i := range 3000 {
		v6 := i%2 == 1
		width := 32
		region := netip.MustParsePrefix("0.0.0.0/0")
		if v6 {
			width = 128
			region = netip.MustParsePrefix("::/0")
		}
		// Excepts land near the cidr: all of them inside one region 10 bits wide.
		if i%7 != 0 {
			region = randomPrefix(r, region, width-10)
		}
		var blocks []blockPeer
		for range 1 + r.IntN(3) {
			// A wide cidr, and excepts of any length from one bit wider than the region.
			top := max(0, region.Bits()-1)
			b := blockPeer{cidr: randomPrefix(r, region, top+r.IntN(4))}
			for range r.IntN(12) {
				b.except = append(b.except, randomPrefix(r, region, min(width, top+r.IntN(width-top+1))))
			}
			if r.IntN(10) == 0 {
				b.except = append(b.except, netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"))
			}
			blocks = append(blocks, b)
		}
		got, ok := blockPrefixes(blocks, v6, math.MaxInt)
		require.True(t, ok)
		require.Equal(t, naiveBlockPrefixes(blocks, v6), got, "blocks %v", blocks)
	}
}

// requireExactCover checks that got is the coarsest list of prefixes holding exactly the
// addresses of cidr outside excepts, in address order: together with the excepts it tiles
// cidr with no gap or overlap, and the parent of each prefix of got holds an excepted address.
func requireExactCover(t *testing.T, cidr netip.Prefix, excepts, got []netip.Prefix) {
	t.Helper()
	inside := normalizePrefixes(slices.DeleteFunc(slices.Clone(excepts), func(e netip.Prefix) bool { return !e.Overlaps(cidr) }))
	tiles := normalizePrefixes(append(slices.Clone(inside), got...))
	require.Equal(t, len(inside)+len(got), len(tiles), "a prefix of the result overlaps an except")
	next, end := prefixRange(cidr)
	for _, p := range tiles {
		first, last := prefixRange(p)
		require.Equal(t, next, first, "gap or overlap before %s", p)
		next = last.plus1()
		if last == end {
			next = first // done; any tile after this one fails the check above
		}
	}
	_, lastTile := prefixRange(tiles[len(tiles)-1])
	require.Equal(t, end, lastTile, "the tiles stop before the end of %s", cidr)
	for _, p := range got {
		require.Greater(t, p.Bits(), cidr.Bits())
		parent := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
		i, _ := slices.BinarySearchFunc(inside, parent.Addr(), func(e netip.Prefix, a netip.Addr) int { return e.Addr().Compare(a) })
		overlaps := i < len(inside) && inside[i].Overlaps(parent) || i > 0 && inside[i-1].Overlaps(parent)
		require.True(t, overlaps, "%s could be its parent %s", p, parent)
	}
}

// TestSubtractExceptsManyExcepts is the regression test of one policy stalling the node's
// sync: 2,000 IPv6 excepts under ::/0 took 71 s and 8,000 IPv4 excepts under 0.0.0.0/0
// 168 s, because each except was subtracted from every piece left so far. The sweep gives
// the exact answer, and its allocations, counted, do not grow with the excepts.
func TestSubtractExceptsManyExcepts(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cidr    string
		excepts int
		v6      bool
	}{
		{name: "2,000 IPv6 excepts under ::/0", cidr: "::/0", excepts: 2000, v6: true},
		{name: "8,000 IPv4 excepts under 0.0.0.0/0", cidr: "0.0.0.0/0", excepts: 8000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cidr, excepts := netip.MustParsePrefix(tt.cidr), randomExcepts(tt.excepts, tt.v6)
			got, ok := subtractExcepts(nil, cidr, excepts, math.MaxInt)
			require.True(t, ok)
			requireExactCover(t, cidr, excepts, got)
			t.Logf("%d excepts leave %d prefixes", tt.excepts, len(got))

			// One slice for the excepts, the output's growth and the sort: a few dozen,
			// where subtracting one except at a time allocated per piece per except.
			allocs := testing.AllocsPerRun(1, func() { _, _ = subtractExcepts(nil, cidr, excepts, math.MaxInt) })
			assert.LessOrEqual(t, allocs, 64.0)
			// Past the bound the sweep stops there.
			allocs = testing.AllocsPerRun(1, func() {
				_, ok := blockPrefixes([]blockPeer{{cidr: cidr, except: excepts}}, tt.v6, maxPolicyBlockEntries)
				assert.False(t, ok)
			})
			assert.LessOrEqual(t, allocs, 64.0)
		})
	}
}

// blockPolicy returns a policy selecting x/a whose ingress rules each have the given number
// of /32 ipBlock peers (entries in all, distinct across rules), plus tweaks.
func blockPolicy(name string, perRule []int, tweaks ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	var rules []networkingv1.NetworkPolicyIngressRule
	next := 0
	for _, n := range perRule {
		var ps []networkingv1.NetworkPolicyPeer
		for range n {
			ps = append(ps, cidrPeer(fmt.Sprintf("10.%d.%d.%d/32", next>>16, next>>8&0xff, next&0xff)))
			next++
		}
		rules = append(rules, from(ps))
	}
	return makePolicy("x", name, append([]func(*networkingv1.NetworkPolicy){targets(labelsSel("pod", "a")), ingressRules(rules...)}, tweaks...)...)
}

// TestCompileBoundsIPBlockEntries checks the bound on what one policy's ipBlocks may cost:
// up to it the policy is enforced; past it the policy is refused with ErrPolicyTooLarge and
// fails closed: the pods it selects stay isolated and none of its rules admit anything.
func TestCompileBoundsIPBlockEntries(t *testing.T) {
	const v4, v6 = corev1.IPv4Protocol, corev1.IPv6Protocol
	ipv6Excepts := make([]string, 2000)
	for i, e := range randomExcepts(2000, true) {
		ipv6Excepts[i] = e.String()
	}
	tests := []struct {
		name    string
		policy  *networkingv1.NetworkPolicy
		refused bool
		// entries is the size of the policy's one IPv4 hash:net set when it is enforced.
		entries int
	}{
		{name: "a policy needing exactly the bound is enforced", policy: blockPolicy("p", []int{maxPolicyBlockEntries}),
			entries: maxPolicyBlockEntries},
		{name: "one entry past the bound refuses the policy", policy: blockPolicy("p", []int{maxPolicyBlockEntries + 1}), refused: true},
		{name: "the bound is for the whole policy, across its rules and directions",
			policy: blockPolicy("p", []int{40000}, egressRules(to(peers(cidrPeer("172.16.0.0/12", "172.16.0.0/12"[:0]+"172.16.0.1/32")))),
				func(np *networkingv1.NetworkPolicy) {
					np.Spec.Ingress = append(np.Spec.Ingress, blockPolicy("q", []int{30000}).Spec.Ingress...)
				}),
			refused: true},
		{name: "2,000 IPv6 excepts under ::/0 refuse the policy, with its other rules",
			policy: makePolicy("x", "p", targets(labelsSel("pod", "a")), ingressRules(
				from(peers(cidrPeer("::/0", ipv6Excepts...))), from(peers(podPeer(labelsSel("pod", "b")))))),
			refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xa := makePod("x", "a", onNode("node-1"), withIPs("10.42.0.1", "fd42::1"))
			st, err := Compile(Input{NodeName: "node-1", Pods: []*corev1.Pod{xa}, Namespaces: []*corev1.Namespace{makeNamespace("x")},
				Policies: []*networkingv1.NetworkPolicy{tt.policy}, Families: []corev1.IPFamily{v4, v6}})
			for fam, ip := range map[corev1.IPFamily]string{v4: "10.42.0.1", v6: "fd42::1"} {
				rs := ruleset(t, st, fam)
				chain := policyChainName(fam, "x", "p", dirIngress)
				assert.Contains(t, chainRules(rs, groupChainOf(rs, dirIngress, ip)), "-j "+chain, "x/a stays isolated by the policy")
				var nets []IPSet
				for _, s := range rs.Sets {
					if s.Type == setTypeNet {
						nets = append(nets, s)
					}
				}
				if tt.refused {
					assert.Empty(t, chainRules(rs, chain), "a refused policy admits nothing")
					assert.Empty(t, chainRules(rs, policyChainName(fam, "x", "p", dirEgress)))
					assert.Empty(t, nets)
				} else if fam == v4 {
					require.Len(t, nets, 1)
					assert.Len(t, nets[0].Entries, tt.entries)
				}
			}
			if !tt.refused {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrPolicyTooLarge)
			pes := policyErrors(err)
			require.Len(t, pes, 1)
			assert.Equal(t, "NetworkPolicy too large x/p: its ipBlocks need more than 65536 ipset entries, the most one policy may use; none of its rules are enforced and the pods it selects stay isolated", pes[0].Error())
		})
	}
}
