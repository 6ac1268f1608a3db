package netpol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

// smallRuleset is a hand-made ruleset for the render tables.
func smallRuleset() Ruleset {
	return Ruleset{
		Family: corev1.IPv4Protocol,
		Chains: []Chain{
			{Name: ChainInput, Rules: []string{"-j " + ChainTail}},
			{Name: ChainForward, Rules: []string{"-d 10.42.0.2 -j KUBE-POD-FW-AAAAAAAAAAAAAAAA", "-j " + ChainTail}},
			{Name: ChainOutput, Rules: []string{"-j " + ChainTail}},
			{Name: ChainTail, Rules: []string{"-m mark --mark 0x20000/0x20000 -j ACCEPT"}},
			{Name: "KUBE-POD-FW-AAAAAAAAAAAAAAAA", Rules: []string{"-j MARK --set-xmark 0x20000/0x20000"}},
		},
	}
}

func TestRenderIPTables(t *testing.T) {
	const header = "*filter\n" +
		":KUBE-ROUTER-INPUT - [0:0]\n:KUBE-ROUTER-FORWARD - [0:0]\n:KUBE-ROUTER-OUTPUT - [0:0]\n" +
		":KUBE-NWPLCY-TAIL - [0:0]\n:KUBE-POD-FW-AAAAAAAAAAAAAAAA - [0:0]\n"
	const rules = "-A KUBE-ROUTER-INPUT -j KUBE-NWPLCY-TAIL\n" +
		"-A KUBE-ROUTER-FORWARD -d 10.42.0.2 -j KUBE-POD-FW-AAAAAAAAAAAAAAAA\n" +
		"-A KUBE-ROUTER-FORWARD -j KUBE-NWPLCY-TAIL\n" +
		"-A KUBE-ROUTER-OUTPUT -j KUBE-NWPLCY-TAIL\n" +
		"-A KUBE-NWPLCY-TAIL -m mark --mark 0x20000/0x20000 -j ACCEPT\n" +
		"-A KUBE-POD-FW-AAAAAAAAAAAAAAAA -j MARK --set-xmark 0x20000/0x20000\n"
	const jumps = "-I INPUT 1 -m comment --comment \"kube-router netpol - 7ESZPZBSH3HENM5S\" -j KUBE-ROUTER-INPUT\n" +
		"-I FORWARD 1 -m comment --comment \"kube-router netpol - 7EFVXDXH42B6K7VQ\" -j KUBE-ROUTER-FORWARD\n" +
		"-I OUTPUT 1 -m comment --comment \"kube-router netpol - B45FFHAZGAWKKD2I\" -j KUBE-ROUTER-OUTPUT\n"
	movedJumps := ourJumps()
	movedJumps["FORWARD"] = []builtinRule{{pos: 2, rule: jumpRule("FORWARD", ChainForward)}}
	tests := []struct {
		name string
		cur  tableState
		prev map[string]string
		want string
	}{
		{
			name: "an empty table gets our chains and the three jumps at position 1",
			cur:  tableState{},
			want: header + jumps + rules + "COMMIT\n",
		},
		{
			name: "jumps already first are left alone, so an unchanged state renders no jump lines",
			cur:  tableState{ownChains: []string{ChainForward, ChainInput, ChainOutput, ChainTail}, jumps: ourJumps()},
			want: header + rules + "COMMIT\n",
		},
		{
			name: "chains known to hold their rules already are left out, a rule added is inserted in place",
			cur:  tableState{ownChains: []string{ChainForward, ChainInput, ChainOutput, ChainTail, "KUBE-POD-FW-AAAAAAAAAAAAAAAA"}, jumps: ourJumps()},
			prev: map[string]string{
				ChainInput: "-j " + ChainTail, ChainOutput: "-j " + ChainTail, ChainTail: "-m mark --mark 0x20000/0x20000 -j ACCEPT",
				ChainForward: "-j " + ChainTail, "KUBE-POD-FW-AAAAAAAAAAAAAAAA": "-j MARK --set-xmark 0x20000/0x20000",
			},
			want: "*filter\n-I KUBE-ROUTER-FORWARD 1 -d 10.42.0.2 -j KUBE-POD-FW-AAAAAAAAAAAAAAAA\nCOMMIT\n",
		},
		{
			name: "a chain whose rules changed order is rewritten",
			cur:  tableState{ownChains: []string{ChainForward, ChainInput, ChainOutput, ChainTail, "KUBE-POD-FW-AAAAAAAAAAAAAAAA"}, jumps: ourJumps()},
			prev: map[string]string{
				ChainInput: "-j " + ChainTail, ChainOutput: "-j " + ChainTail, ChainTail: "-m mark --mark 0x20000/0x20000 -j ACCEPT",
				ChainForward: "-j " + ChainTail + "\n-d 10.42.0.2 -j KUBE-POD-FW-AAAAAAAAAAAAAAAA", "KUBE-POD-FW-AAAAAAAAAAAAAAAA": "-j MARK --set-xmark 0x20000/0x20000",
			},
			want: "*filter\n:KUBE-ROUTER-FORWARD - [0:0]\n" +
				"-A KUBE-ROUTER-FORWARD -d 10.42.0.2 -j KUBE-POD-FW-AAAAAAAAAAAAAAAA\n-A KUBE-ROUTER-FORWARD -j KUBE-NWPLCY-TAIL\nCOMMIT\n",
		},
		{
			name: "an unchanged state renders an empty restore",
			cur:  tableState{ownChains: []string{ChainForward, ChainInput, ChainOutput, ChainTail, "KUBE-POD-FW-AAAAAAAAAAAAAAAA"}, jumps: ourJumps()},
			prev: map[string]string{
				ChainInput: "-j " + ChainTail, ChainOutput: "-j " + ChainTail, ChainTail: "-m mark --mark 0x20000/0x20000 -j ACCEPT",
				ChainForward: "-d 10.42.0.2 -j KUBE-POD-FW-AAAAAAAAAAAAAAAA\n-j " + ChainTail, "KUBE-POD-FW-AAAAAAAAAAAAAAAA": "-j MARK --set-xmark 0x20000/0x20000",
			},
			want: emptyRestore,
		},
		{
			name: "a jump pushed down by another rule is deleted and inserted again at 1",
			cur:  tableState{jumps: movedJumps},
			want: header +
				"-D FORWARD -m comment --comment \"kube-router netpol - 7EFVXDXH42B6K7VQ\" -j KUBE-ROUTER-FORWARD\n" +
				"-I FORWARD 1 -m comment --comment \"kube-router netpol - 7EFVXDXH42B6K7VQ\" -j KUBE-ROUTER-FORWARD\n" +
				rules + "COMMIT\n",
		},
		{
			name: "kube-router's jumps and stale chains are replaced and deleted in the same transaction",
			cur: tableState{
				ownChains: []string{"KUBE-NWPLCY-OLDOLDOLDOLDOLDO", ChainInput, "KUBE-POD-FW-OLDOLDOLDOLDOLDO"},
				jumps: map[string][]builtinRule{
					"INPUT": {{pos: 1, rule: "-m comment --comment \"kube-router netpol - XYZ\" -j KUBE-ROUTER-INPUT"}, {pos: 3, rule: "-j KUBE-ROUTER-INPUT"}},
				},
			},
			want: header + ":KUBE-NWPLCY-OLDOLDOLDOLDOLDO - [0:0]\n:KUBE-POD-FW-OLDOLDOLDOLDOLDO - [0:0]\n" +
				"-D INPUT -m comment --comment \"kube-router netpol - XYZ\" -j KUBE-ROUTER-INPUT\n-D INPUT -j KUBE-ROUTER-INPUT\n" +
				jumps + rules +
				"-X KUBE-NWPLCY-OLDOLDOLDOLDOLDO\n-X KUBE-POD-FW-OLDOLDOLDOLDOLDO\nCOMMIT\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, renderIPTables(smallRuleset(), tt.cur, knownRules(tt.prev)))
		})
	}
}

func TestRenderIPTablesCleanup(t *testing.T) {
	tests := []struct {
		name string
		cur  tableState
		want string
	}{
		{name: "a table without our objects needs no restore", cur: tableState{jumps: map[string][]builtinRule{}}, want: ""},
		{
			name: "jumps are deleted, then every chain of ours flushed and deleted",
			cur: tableState{ownChains: []string{"KUBE-POD-FW-AAAAAAAAAAAAAAAA", ChainInput},
				jumps: map[string][]builtinRule{"INPUT": {{pos: 1, rule: "-j KUBE-ROUTER-INPUT"}}}},
			want: "*filter\n:KUBE-POD-FW-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-ROUTER-INPUT - [0:0]\n" +
				"-D INPUT -j KUBE-ROUTER-INPUT\n-X KUBE-POD-FW-AAAAAAAAAAAAAAAA\n-X KUBE-ROUTER-INPUT\nCOMMIT\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, renderIPTablesCleanup(tt.cur))
		})
	}
}

func TestParseIPTablesSave(t *testing.T) {
	dump := `# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j KUBE-ROUTER-INPUT
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-ROUTER-INPUT - [0:0]
:KUBE-POD-FW-AAAAAAAAAAAAAAAA - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -m comment --comment "kube-router netpol - X" -j KUBE-ROUTER-INPUT
-A FORWARD -j KUBE-FORWARD
-A KUBE-ROUTER-INPUT -j KUBE-POD-FW-AAAAAAAAAAAAAAAA
COMMIT
`
	got := parseIPTablesSave(dump)
	assert.Equal(t, tableState{
		ownChains: []string{"KUBE-POD-FW-AAAAAAAAAAAAAAAA", ChainInput},
		jumps:     map[string][]builtinRule{"INPUT": {{pos: 2, rule: `-m comment --comment "kube-router netpol - X" -j KUBE-ROUTER-INPUT`}}},
		nft:       true,
	}, got, "only the filter table counts, and kube-proxy's KUBE-FORWARD is not ours")
	assert.False(t, parseIPTablesSave("# Generated by iptables-save v1.8.9 on Thu Dec  3 17:07:51 2026\n*filter\nCOMMIT\n").nft,
		"a legacy dump says no (nf_tables)")
}

// renderNewSets renders the ipset restore input that creates and fills sets in a kernel that
// has none of them.
func renderNewSets(sets []IPSet) string {
	create, fill := renderIPSetCreate(sets, nil, nil)
	return create + fill
}

func TestRenderIPSets(t *testing.T) {
	v4 := IPSet{Name: "KUBE-SRC-AAAAAAAAAAAAAAAA", Type: setTypeIP, Family: corev1.IPv4Protocol, Entries: []string{"10.42.0.2", "10.42.0.10"}}
	v6 := IPSet{Name: "inet6:KUBE-DST-BBBBBBBBBBBBBBBB", Type: setTypeNet, Family: corev1.IPv6Protocol, Entries: []string{"::/1", "8000::/1"}}
	tmp4, tmp6 := tempSetName(v4.Name), tempSetName(v6.Name)
	tests := []struct {
		name         string
		existing     []string
		refs         map[string]int
		create, fill string
	}{
		{
			name: "a new hash:ip set is created empty and filled apart, a hash:net set filled under a temporary name and renamed",
			create: "create " + v4.Name + " hash:ip family inet hashsize 1024 maxelem 262144\n" +
				"create " + tmp6 + " hash:net family inet6 hashsize 1024 maxelem 262144\n" +
				"add " + tmp6 + " ::/1\nadd " + tmp6 + " 8000::/1\nrename " + tmp6 + " " + v6.Name + "\n",
			fill: "add " + v4.Name + " 10.42.0.2\nadd " + v4.Name + " 10.42.0.10\n",
		},
		{
			name: "the set more rules match is created first",
			refs: map[string]int{v4.Name: 1, v6.Name: 2},
			create: "create " + tmp6 + " hash:net family inet6 hashsize 1024 maxelem 262144\n" +
				"add " + tmp6 + " ::/1\nadd " + tmp6 + " 8000::/1\nrename " + tmp6 + " " + v6.Name + "\n" +
				"create " + v4.Name + " hash:ip family inet hashsize 1024 maxelem 262144\n",
			fill: "add " + v4.Name + " 10.42.0.2\nadd " + v4.Name + " 10.42.0.10\n",
		},
		{
			name:     "a set that exists already holds its entries, since its name is its content",
			existing: []string{v4.Name, v6.Name, "foreign"},
		},
		{
			name:     "a temporary set left by a failed restore is flushed and reused",
			existing: []string{v4.Name, tmp6},
			create:   "flush " + tmp6 + "\nadd " + tmp6 + " ::/1\nadd " + tmp6 + " 8000::/1\nrename " + tmp6 + " " + v6.Name + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			create, fill := renderIPSetCreate([]IPSet{v4, v6}, parseSetNames(joinLines(tt.existing)), tt.refs)
			assert.Equal(t, tt.create, create)
			assert.Equal(t, tt.fill, fill)
		})
	}
	t.Run("the larger of two sets as often matched is created first", func(t *testing.T) {
		small := IPSet{Name: "KUBE-SRC-CCCCCCCCCCCCCCCC", Type: setTypeIP, Family: corev1.IPv4Protocol, Entries: []string{"10.42.0.2"}}
		create, _ := renderIPSetCreate([]IPSet{small, v4}, nil, nil)
		assert.Equal(t, "create "+v4.Name+" hash:ip family inet hashsize 1024 maxelem 262144\n"+
			"create "+small.Name+" hash:ip family inet hashsize 1024 maxelem 262144\n", create)
	})
	t.Run("after the restore the kernel holds the new sets and no reused temporary set", func(t *testing.T) {
		existing := parseSetNames(joinLines([]string{tmp6, "foreign", tempSetName("KUBE-DST-OLD")}))
		want := parseSetNames(joinLines([]string{v4.Name, v6.Name, "foreign", tempSetName("KUBE-DST-OLD")}))
		assert.Equal(t, want, setsAfterCreate([]IPSet{v4, v6}, existing))
		assert.Equal(t, []string{v4.Name}, setsAfterCreate([]IPSet{v4}, []string{v4.Name}), "nothing created, nothing changed")
		assert.Equal(t, []string{tmp4, v4.Name}, setsAfterCreate([]IPSet{v4}, []string{tmp4}),
			"a hash:ip set's temporary set, left by an older version, is not reused: it stays, to be destroyed as stale")
	})
	t.Run("rules are counted per set they match", func(t *testing.T) {
		st := State{Rulesets: []Ruleset{{Chains: []Chain{{Name: "C", Rules: []string{
			"-m set --match-set " + v4.Name + " src -m set --match-set " + v6.Name + " dst -j ACCEPT",
			"-m set --match-set " + v4.Name + " dst -j ACCEPT",
			"-m set --match-set OTHER src -j ACCEPT",
		}}}}}}
		assert.Equal(t, map[string]int{v4.Name: 2, v6.Name: 1}, setReferences(st, []string{v4.Name, v6.Name}))
	})
	t.Run("stale sets are ours and unwanted, kube-router's included", func(t *testing.T) {
		existing := parseSetNames(joinLines([]string{v4.Name, "KUBE-DST-OLD", "inet6:KUBE-SRC-OLD", kubeRouterLocalPods, "foreign", "KUBE-CLUSTER-IP"}))
		stale := staleSets([]IPSet{v4}, existing)
		assert.Equal(t, []string{"KUBE-DST-OLD", "inet6:KUBE-SRC-OLD", kubeRouterLocalPods}, stale)
		assert.Equal(t, "destroy KUBE-DST-OLD\ndestroy inet6:KUBE-SRC-OLD\ndestroy kube-router-local-pods\n", renderIPSetDestroy(stale))
	})
}

func TestRuleEdits(t *testing.T) {
	tests := []struct {
		name     string
		old, new []string
		want     []string
		wantOK   bool
	}{
		{
			name: "a rule added in the middle is inserted at its position", old: []string{"a", "c", "d", "e"}, new: []string{"a", "b", "c", "d", "e"},
			want: []string{"-I C 2 b"}, wantOK: true,
		},
		{
			name: "a rule removed is deleted by its spec", old: []string{"a", "b", "c", "d"}, new: []string{"a", "c", "d"},
			want: []string{"-D C b"}, wantOK: true,
		},
		{
			name: "a changed rule is deleted and the new one inserted where it belongs", old: []string{"a", "b", "c", "d", "e"}, new: []string{"a", "b2", "c", "d", "e"},
			want: []string{"-D C b", "-I C 2 b2"}, wantOK: true,
		},
		{name: "kept rules in another order need a rewrite", old: []string{"a", "b", "c"}, new: []string{"b", "a", "c"}},
		{name: "a rule present twice needs a rewrite", old: []string{"a", "a", "b"}, new: []string{"a", "b", "c"}},
		{name: "edits as long as the chain are not worth it", old: []string{"a"}, new: []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ruleEdits("C", tt.old, tt.new)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRenderIPSetUpdate(t *testing.T) {
	peers := IPSet{Name: "KUBE-SRC-PPPPPPPPPPPPPPPP", Type: setTypeIP, Family: corev1.IPv4Protocol, Entries: []string{"10.42.0.2", "10.42.0.3"}}
	local := IPSet{Name: "KUBE-DST-LLLLLLLLLLLLLLLL", Type: setTypeIP, Family: corev1.IPv4Protocol, Entries: []string{"10.42.0.2", "10.42.0.3"}, AddLast: true}
	blocks := IPSet{Name: "KUBE-SRC-BBBBBBBBBBBBBBBB", Type: setTypeNet, Family: corev1.IPv4Protocol, Entries: []string{"10.0.0.0/8"}}
	all := []IPSet{peers, local, blocks}
	existing := parseSetNames(joinLines([]string{peers.Name, local.Name, blocks.Name}))
	tests := []struct {
		name          string
		members       map[string][]string
		before, after string
	}{
		{
			name:    "sets whose members are as desired need nothing",
			members: map[string][]string{peers.Name: {"10.42.0.2", "10.42.0.3"}, local.Name: {"10.42.0.2", "10.42.0.3"}},
		},
		{
			name:    "members are deleted and added in place, a local pod joins the tail's set only after the rules",
			members: map[string][]string{peers.Name: {"10.42.0.2", "10.42.0.9"}, local.Name: {"10.42.0.2", "10.42.0.9"}},
			before: "add " + peers.Name + " 10.42.0.3\ndel " + peers.Name + " 10.42.0.9\n" +
				"del " + local.Name + " 10.42.0.9\n",
			after: "add " + local.Name + " 10.42.0.3\n",
		},
		{
			name:    "sets with unknown members are left alone",
			members: map[string][]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restores := renderIPSetUpdate(all, existing, tt.members, nil)
			assert.Empty(t, restores.create)
			assert.Equal(t, tt.before, restores.fill)
			assert.Equal(t, tt.after, restores.after)
		})
	}
	t.Run("a new set is created and filled before the rules commit, AddLast or not", func(t *testing.T) {
		restores := renderIPSetUpdate([]IPSet{local}, nil, nil, nil)
		assert.Equal(t, renderNewSets([]IPSet{local}), restores.create+restores.fill)
		assert.Empty(t, restores.after)
	})
}

func TestParseIPSetSave(t *testing.T) {
	save := "create foreign hash:ip family inet hashsize 1024 maxelem 65536\nadd foreign 203.0.113.7\n" +
		"create KUBE-SRC-AAAAAAAAAAAAAAAA hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x1\n" +
		"add KUBE-SRC-AAAAAAAAAAAAAAAA 10.42.0.10\nadd KUBE-SRC-AAAAAAAAAAAAAAAA 10.42.0.9\n" +
		"create inet6:KUBE-DST-BBBBBBBBBBBBBBBB hash:ip family inet6 hashsize 1024 maxelem 65536\n" +
		"create KUBE-SRC-NNNNNNNNNNNNNNNN hash:net family inet hashsize 1024 maxelem 65536\nadd KUBE-SRC-NNNNNNNNNNNNNNNN 10.0.0.0/8\n"
	assert.Equal(t, map[string][]string{
		"KUBE-SRC-AAAAAAAAAAAAAAAA":       {"10.42.0.9", "10.42.0.10"},
		"inet6:KUBE-DST-BBBBBBBBBBBBBBBB": {},
	}, parseIPSetSave(save), "our hash:ip sets only, empty ones included, entries in address order")
}

// joinLines renders names as `ipset list -n` prints them.
func joinLines(names []string) string {
	s := ""
	for _, n := range names {
		s += n + "\n"
	}
	return s
}

// knownRules turns chains' rules written one string per chain, a rule per line, into what
// renderIPTables knows of the previous sync.
func knownRules(joined map[string]string) map[string][]string {
	if joined == nil {
		return nil
	}
	known := make(map[string][]string, len(joined))
	for name, rules := range joined {
		known[name] = strings.Split(rules, "\n")
	}
	return known
}

func TestEntryChangesMergesSortedEntries(t *testing.T) {
	for _, tt := range []struct {
		name               string
		cur, want          []string
		wantDels, wantAdds []string
	}{
		{name: "equal", cur: []string{"10.0.0.2", "10.0.0.10"}, want: []string{"10.0.0.2", "10.0.0.10"}},
		{name: "one added in the middle, in address order", cur: []string{"10.0.0.2", "10.0.0.10"},
			want: []string{"10.0.0.2", "10.0.0.9", "10.0.0.10"}, wantAdds: []string{"10.0.0.9"}},
		{name: "one gone at each end", cur: []string{"10.0.0.1", "10.0.0.2", "10.0.0.30"}, want: []string{"10.0.0.2"},
			wantDels: []string{"10.0.0.1", "10.0.0.30"}},
		{name: "replaced", cur: []string{"fd00::1", "fd00::a"}, want: []string{"fd00::2", "fd00::a"},
			wantDels: []string{"fd00::1"}, wantAdds: []string{"fd00::2"}},
		{name: "from empty", want: []string{"10.0.0.1"}, wantAdds: []string{"10.0.0.1"}},
		{name: "to empty", cur: []string{"10.0.0.1"}, wantDels: []string{"10.0.0.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var dels, adds []string
			entryChanges(tt.cur, tt.want, func(e string) { dels = append(dels, e) }, func(e string) { adds = append(adds, e) })
			assert.Equal(t, tt.wantDels, dels)
			assert.Equal(t, tt.wantAdds, adds)
		})
	}
}
