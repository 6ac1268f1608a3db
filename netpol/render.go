package netpol

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// This file renders a Ruleset as the text the restore tools read. Rendering is pure: the
// kernel state it needs (which of our chains and sets exist, where our jumps sit) is an
// argument, so the same inputs give byte-identical text.

// emptyRestore is what renderIPTables returns when the table needs no change.
const emptyRestore = "*filter\nCOMMIT\n"

// maxSetElements is the least maxelem of the sets we create (ipset's default is 65536).
const maxSetElements = 1 << 18

// jumpRule is the rule placed at position 1 of builtin to send every packet through chain
// (as kube-router inserts its jumps). kube-router's comment carries a hash of the rule; so does ours.
func jumpRule(builtin, chain string) string {
	return "-m comment --comment \"kube-router netpol - " + nameHash("jump", builtin, chain) + "\" -j " + chain
}

// renderIPTables renders the iptables-restore --noflush input that makes one family's filter
// table hold exactly rs's chains, given cur, the table as read back.
//
// Only our chains are declared: ":CHAIN - [0:0]" creates a chain or flushes it, and with
// --noflush nothing else in the table is touched, so kube-proxy's, flannel's or anyone's
// rules survive every sync (kube-router restores the whole table, kube-router#1248).
// The jump from each built-in chain is left alone when it is already the chain's only jump
// to us and sits at position 1; otherwise every jump to us there is deleted and ours inserted
// at 1, which also replaces kube-router's jumps after a migration. Our chains that rs no
// longer has are flushed and deleted in the same transaction, after nothing jumps to them.
//
// prev maps the chains known to hold given rules since the last sync; a chain of rs whose
// rules equal its entry is left out, and one whose rules changed a little is edited in place
// (ruleEdits), so a small change restores a small text. nil means nothing is known and every
// chain is written. A restore with nothing to do renders emptyRestore.
func renderIPTables(rs Ruleset, cur tableState, prev map[string][]string) string {
	want := make(map[string]bool, len(rs.Chains))
	changed := make([]Chain, 0, len(rs.Chains))
	var edits []string
	for _, ch := range rs.Chains {
		want[ch.Name] = true
		rules, ok := prev[ch.Name]
		if ok && slices.Equal(rules, ch.Rules) {
			continue
		}
		if ok {
			if e, ok := ruleEdits(ch.Name, rules, ch.Rules); ok {
				edits = append(edits, e...)
				continue
			}
		}
		changed = append(changed, ch)
	}
	// Sized for what is written: a pod event writes a few lines of a table of megabytes.
	size := 256
	for _, ch := range changed {
		for _, r := range ch.Rules {
			size += len(ch.Name) + len(r) + 5
		}
	}
	for _, e := range edits {
		size += len(e) + 1
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString("*filter\n")
	var stale []string
	for _, name := range cur.ownChains {
		if !want[name] {
			stale = append(stale, name)
		}
	}
	declared := make([]string, 0, len(changed)+len(stale))
	for _, ch := range changed {
		declared = append(declared, ch.Name)
	}
	declared = append(declared, stale...)
	listAll := cur.nft && len(changed) > 0 && len(changed) == len(rs.Chains)
	if listAll {
		// Top-level chains first: the jumps below need them, and the listing must come after
		// the jumps (see listAllLine).
		declared = listingOrder(declared)
	}
	for _, name := range declared {
		if !listAll || isTopLevelChain(name) {
			b.WriteString(":" + name + " - [0:0]\n")
		}
	}
	writeJumps(&b, cur)
	if listAll {
		b.WriteString(listAllLine)
		for _, name := range declared {
			if !isTopLevelChain(name) {
				b.WriteString(":" + name + " - [0:0]\n")
			}
		}
	}
	for _, ch := range changed {
		for _, r := range ch.Rules {
			b.WriteString("-A " + ch.Name + " " + r + "\n")
		}
	}
	for _, e := range edits {
		b.WriteString(e + "\n")
	}
	for _, name := range stale {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// listAllLine is a command without a chain that iptables-nft-restore (1.8.x) reads as "every
// chain of the table": it then fetches all chains in one dump, where a restore naming only
// chains fetches each one alone and first inserts every command's chain and jump target into a
// sorted list, one strcmp per name before it. At 14,000 chains that list took 80% of the
// restore (4.6 s of CPU of the 10x workload's first sync; 0.9 s with this line). Listing the
// rules prints them (the output is discarded) and changes nothing. It is used only when every
// chain of ours is declared, so that the rules listed are the foreign ones, and only on
// nf_tables: iptables-legacy-restore lists its pending table and fails on our jumps there.
// It comes after our jumps: an iptables-nft 1.8.9 listing fakes missing built-in chains,
// and a later insert into one then fails.
const listAllLine = "-S\n"

// listingOrder returns names with the top-level chains first and the others scrambled by a
// hash of their name. iptables-nft sorts the chains it lists with a quicksort that takes the
// first chain as pivot, quadratic on chains created in name order.
func listingOrder(names []string) []string {
	out := slices.Clone(names)
	key := func(name string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(name))
		return h.Sum32()
	}
	keys := make(map[string]uint32, len(out))
	for _, name := range out {
		keys[name] = key(name)
	}
	slices.SortFunc(out, func(a, b string) int {
		if ta, tb := isTopLevelChain(a), isTopLevelChain(b); ta != tb {
			if ta {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(keys[a], keys[b]), strings.Compare(a, b))
	})
	return out
}

// writeJumps writes the lines that make our jump each built-in chain's only jump to us, at
// position 1, given cur, the table as read back.
func writeJumps(b *strings.Builder, cur tableState) {
	for _, bc := range builtinChains() {
		builtin, chain := bc[0], bc[1]
		rule := jumpRule(builtin, chain)
		have := cur.jumps[builtin]
		if len(have) == 1 && have[0].pos == 1 && have[0].rule == rule {
			continue
		}
		for _, r := range have {
			b.WriteString("-D " + builtin + " " + r.rule + "\n")
		}
		b.WriteString("-I " + builtin + " 1 " + rule + "\n")
	}
}

// ruleEdits returns the -D and -I lines that turn chain's rules from old into new in place,
// when that is shorter than rewriting the chain: a pod added to the workload of record changes
// two of the 200 rules of KUBE-ROUTER-FORWARD, and a rewrite of the top-level chains would be
// most of the restore. Rules of old missing from new are deleted by their spec, then each
// rule new adds is inserted at its final position, in order, so the rules before it are
// already in place. ok is false, and the chain must be rewritten, when a rule appears twice
// (a delete by spec would be ambiguous) or the kept rules changed order.
func ruleEdits(chain string, old, new []string) (edits []string, ok bool) {
	inOld := make(map[string]bool, len(old))
	for _, r := range old {
		inOld[r] = true
	}
	inNew := make(map[string]bool, len(new))
	for _, r := range new {
		inNew[r] = true
	}
	if len(inOld) != len(old) || len(inNew) != len(new) {
		return nil, false
	}
	var kept []string
	for _, r := range old {
		if inNew[r] {
			kept = append(kept, r)
		} else {
			edits = append(edits, "-D "+chain+" "+r)
		}
	}
	j := 0
	for i, r := range new {
		switch {
		case j < len(kept) && kept[j] == r:
			j++
		case inOld[r]:
			return nil, false
		default:
			edits = append(edits, "-I "+chain+" "+strconv.Itoa(i+1)+" "+r)
		}
	}
	if j != len(kept) || len(edits) >= len(new) {
		return nil, false
	}
	return edits, true
}

// renderIPTablesCleanup renders the iptables-restore --noflush input that removes all of ours
// from one family's filter table: the jumps from the built-in chains, then every chain.
func renderIPTablesCleanup(cur tableState) string {
	if len(cur.ownChains) == 0 && len(cur.jumps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for _, name := range cur.ownChains {
		b.WriteString(":" + name + " - [0:0]\n")
	}
	for _, bc := range builtinChains() {
		for _, r := range cur.jumps[bc[0]] {
			b.WriteString("-D " + bc[0] + " " + r.rule + "\n")
		}
	}
	for _, name := range cur.ownChains {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// ipsetRestores is the ipset restore input of one sync, in the three parts Apply runs at
// different times around the iptables-restore.
type ipsetRestores struct {
	// create makes the sets the kernel lacks, so that the iptables-restore, which looks each
	// set up by name as it reads a rule, finds them (renderIPSetCreate).
	create string
	// fill adds the members of the new hash:ip sets and brings those of the others to the
	// desired entries, but those of the AddLast and DeleteLast sets. It runs while the
	// iptables-restore reads its input, and ends before that restore commits.
	fill string
	// after holds the additions to AddLast sets and the removals from DeleteLast sets, run
	// once the chains are restored.
	after string
}

// renderIPSetCreate renders the ipset restore input that creates every set of sets that
// existing (the names in the kernel) lacks, and the one that fills the new hash:ip sets.
//
// A hash:ip set is created empty under its name and filled by fill: no rule refers to it
// until the iptables-restore commits, which waits for fill, and a fill that fails halfway
// leaves members the next sync reads back with `ipset save` and corrects. A hash:net set is
// named by its content and never read back, so it is filled under a temporary name and
// renamed at the end: a restore that fails halfway never leaves it half-filled under its
// name. A leftover temporary set is flushed and reused.
//
// The kernel finds a set by name by comparing it with every set created before it, once for
// each rule of the iptables-restore that matches the set and each member ipset adds. New sets
// are therefore created most referenced first (refs counts the rules naming each set; nil
// means unknown), then largest first: at 10× the workload of record, that order takes the
// kernel's name lookups from a third of the restore's time to a sixth (docs/scale-netpol.md).
func renderIPSetCreate(sets []IPSet, existing []string, refs map[string]int) (create, fill string) {
	var fresh []*IPSet
	size := 0
	for i := range sets {
		s := &sets[i]
		if _, found := slices.BinarySearch(existing, s.Name); !found {
			fresh = append(fresh, s)
			size += len(s.Entries) * (len(s.Name) + 24)
		}
	}
	slices.SortStableFunc(fresh, func(a, b *IPSet) int {
		return cmp.Or(cmp.Compare(refs[b.Name], refs[a.Name]), cmp.Compare(len(b.Entries), len(a.Entries)))
	})
	var c, f strings.Builder
	c.Grow(128 * len(fresh))
	f.Grow(size)
	for _, s := range fresh {
		name := s.Name
		if s.Type != setTypeIP {
			name = tempSetName(s.Name)
		}
		if _, found := slices.BinarySearch(existing, name); found && name != s.Name {
			c.WriteString("flush " + name + "\n")
		} else {
			family := "inet"
			if strings.HasPrefix(s.Name, ipv6SetPrefix) {
				family = "inet6"
			}
			size := 1024
			for size < len(s.Entries) {
				size *= 2
			}
			// A pod set grows in place as pods come, so its limit is set for a cluster of the
			// largest size Kubernetes supports (150,000 pods), not for the set's first size;
			// maxelem only caps, it reserves nothing.
			c.WriteString("create " + name + " " + s.Type + " family " + family + " hashsize " + strconv.Itoa(size) +
				" maxelem " + strconv.Itoa(max(maxSetElements, 2*size)) + "\n")
		}
		if s.Type != setTypeIP {
			for _, e := range s.Entries {
				c.WriteString("add " + name + " " + e + "\n")
			}
			c.WriteString("rename " + name + " " + s.Name + "\n")
			continue
		}
		for _, e := range s.Entries {
			f.WriteString("add " + name + " " + e + "\n")
		}
	}
	return c.String(), f.String()
}

// renderIPSetUpdate renders the ipset restore input of a sync: creating the sets existing
// (the names in the kernel) lacks, filling them (renderIPSetCreate), and bringing the
// members of the hash:ip sets whose current members are known (members, by name) to the
// desired entries. The additions to AddLast sets go after the iptables-restore, so a local
// pod is let through the tail only once its group's chain is live, and so do the removals
// from DeleteLast sets, so a pod leaves its old group only once its new one is live. Other
// removals go before: from those sets a removal only ever denies. hash:net sets are named by
// their content and never need an update.
func renderIPSetUpdate(sets []IPSet, existing []string, members map[string][]string, refs map[string]int) ipsetRestores {
	var b, a strings.Builder
	create, fill := renderIPSetCreate(sets, existing, refs)
	b.WriteString(fill)
	for _, s := range sets {
		cur, known := members[s.Name]
		if s.Type != setTypeIP || !known {
			continue
		}
		if _, found := slices.BinarySearch(existing, s.Name); !found {
			continue
		}
		if slices.Equal(cur, s.Entries) {
			// Most sets of a pod event.
			continue
		}
		dels, adds := &b, &b
		if s.DeleteLast {
			dels = &a
		}
		if s.AddLast {
			adds = &a
		}
		entryChanges(cur, s.Entries, func(e string) { dels.WriteString("del " + s.Name + " " + e + "\n") },
			func(e string) { adds.WriteString("add " + s.Name + " " + e + "\n") })
	}
	return ipsetRestores{create: create, fill: b.String(), after: a.String()}
}

// setReferences counts, for each set of names, the rules of st that match it.
func setReferences(st State, names []string) map[string]int {
	const match = "--match-set "
	refs := make(map[string]int, len(names))
	for _, name := range names {
		refs[name] = 0
	}
	for _, rs := range st.Rulesets {
		for _, ch := range rs.Chains {
			for _, rule := range ch.Rules {
				for rest := rule; ; {
					i := strings.Index(rest, match)
					if i < 0 {
						break
					}
					rest = rest[i+len(match):]
					name, _, _ := strings.Cut(rest, " ")
					if n, ok := refs[name]; ok {
						refs[name] = n + 1
					}
				}
			}
		}
	}
	return refs
}

// entryChanges calls del for each entry of cur that want lacks and add for each entry of want
// that cur lacks. Both are in compareEntries order (compiled sets, parseIPSetSave), so one
// merge finds them, parsing only where the lists differ: a pod event changes one entry of
// sets holding up to 17,000 at 10×, which maps of both lists took 15 ms to compare.
func entryChanges(cur, want []string, del, add func(string)) {
	i, j := 0, 0
	for i < len(cur) && j < len(want) {
		c := 0
		if cur[i] != want[j] {
			c = compareEntries(cur[i], want[j])
		}
		switch {
		case c < 0:
			del(cur[i])
			i++
		case c > 0:
			add(want[j])
			j++
		default:
			i++
			j++
		}
	}
	for ; i < len(cur); i++ {
		del(cur[i])
	}
	for ; j < len(want); j++ {
		add(want[j])
	}
}

// tempSetName names the set a new hash:net set is filled in before its rename: our prefix, so a
// leftover is swept as stale, and a hash of the final name.
func tempSetName(name string) string {
	prefix := ""
	if strings.HasPrefix(name, ipv6SetPrefix) {
		prefix = ipv6SetPrefix
	}
	return prefix + dstSetPrefix + nameHash("tmp", name)
}

// newSetNames returns the names of the sets of sets that existing lacks.
func newSetNames(sets []IPSet, existing []string) []string {
	var out []string
	for _, s := range sets {
		if _, found := slices.BinarySearch(existing, s.Name); !found {
			out = append(out, s.Name)
		}
	}
	return out
}

// setsAfterCreate returns the set names the kernel holds after the restore that
// renderIPSetCreate(sets, existing) rendered succeeded: existing, less the leftover temporary
// sets it renamed, plus the sets it created. Sorted, like existing.
func setsAfterCreate(sets []IPSet, existing []string) []string {
	out := slices.Clone(existing)
	for _, s := range sets {
		if _, found := slices.BinarySearch(existing, s.Name); found {
			continue
		}
		if i, found := slices.BinarySearch(out, tempSetName(s.Name)); found && s.Type != setTypeIP {
			out = slices.Delete(out, i, i+1)
		}
		if i, found := slices.BinarySearch(out, s.Name); !found {
			out = slices.Insert(out, i, s.Name)
		}
	}
	return out
}

// staleSets returns our sets among existing that no set of desired is named after.
func staleSets(desired []IPSet, existing []string) []string {
	want := make(map[string]bool, len(desired))
	for _, s := range desired {
		want[s.Name] = true
	}
	var out []string
	for _, name := range existing {
		if isOwnSet(name) && !want[name] {
			out = append(out, name)
		}
	}
	return out
}

// renderIPSetDestroy renders the ipset restore input that destroys names.
func renderIPSetDestroy(names []string) string {
	var b strings.Builder
	for _, name := range names {
		b.WriteString("destroy " + name + "\n")
	}
	return b.String()
}
