package netpol

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenderIPTablesListsAllChainsOnlyForAFullRewriteOnNFTables(t *testing.T) {
	full := tableState{jumps: map[string][]builtinRule{}, nft: true}
	known := map[string][]string{ChainTail: {"-m mark --mark 0x20000/0x20000 -j ACCEPT"}}
	tests := []struct {
		name   string
		cur    tableState
		prev   map[string][]string
		listed bool
	}{
		{name: "a first sync on nf_tables lists", cur: full, listed: true},
		{name: "a legacy table does not: its restore fails on the listing", cur: tableState{jumps: map[string][]builtinRule{}}},
		{name: "a sync that keeps a chain of ours does not: the listing would print its rules", cur: full, prev: known},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := renderIPTables(smallRuleset(), tt.cur, tt.prev)
			assert.Equal(t, tt.listed, slices.Contains(strings.Split(text, "\n"), strings.TrimSuffix(listAllLine, "\n")))
		})
	}
}

func TestRenderIPTablesWithTheListingHoldsTheSameCommandsInAWorkingOrder(t *testing.T) {
	plain := renderIPTables(smallRuleset(), tableState{}, nil)
	listed := renderIPTables(smallRuleset(), tableState{nft: true}, nil)
	lines := strings.Split(listed, "\n")
	withoutListing := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return l == "-S" })
	assert.ElementsMatch(t, strings.Split(plain, "\n"), withoutListing, "only the listing is added")

	at := func(prefix string) (first, last int) {
		first, last = -1, -1
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		return first, last
	}
	listing := slices.Index(lines, "-S")
	_, lastJump := at("-I ")
	_, lastTopLevel := at(":KUBE-ROUTER-")
	firstOther, _ := at(":KUBE-NWPLCY-")
	firstRule, _ := at("-A ")
	require.NotEqual(t, -1, lastJump)
	assert.Less(t, lastTopLevel, lastJump, "a jump's chain is declared before it")
	assert.Less(t, lastJump, listing, "the jumps come before the listing, which would fake missing built-in chains")
	assert.Less(t, listing, firstOther, "the other chains are declared after the listing, so they cost no sorted insert")
	assert.Less(t, firstOther, firstRule, "every chain is declared before the rules")
}

func TestListingOrderPutsTopLevelChainsFirstAndScramblesTheRest(t *testing.T) {
	var names []string
	for i := range 64 {
		names = append(names, "KUBE-NWPLCY-"+nameHash("p", string(rune('a'+i))))
	}
	slices.Sort(names)
	got := listingOrder(append([]string{ChainForward}, names...))
	assert.Equal(t, ChainForward, got[0])
	assert.ElementsMatch(t, names, got[1:])
	assert.False(t, slices.IsSorted(got[1:]), "chains in name order make iptables-nft's listing sort quadratic")
	assert.Equal(t, got, listingOrder(append([]string{ChainForward}, names...)), "the order is deterministic")
}
