package netpol

import (
	"slices"
	"strconv"
	"strings"
)

// This file renders a Ruleset as the text the restore tools read. Rendering is pure: the
// kernel state it needs (which of our chains and sets exist, where our jumps sit) is an
// argument, so the same inputs give byte-identical text.

// emptyRestore is what renderIPTables returns when the table needs no change.
const emptyRestore = "*filter\nCOMMIT\n"

// jumpRule is the rule placed at position 1 of builtin to send every packet through chain
// (spec §1.3). kube-router's comment carries a hash of the rule; so does ours.
func jumpRule(builtin, chain string) string {
	return "-m comment --comment \"kube-router netpol - " + nameHash("jump", builtin, chain) + "\" -j " + chain
}

// renderIPTables renders the iptables-restore --noflush input that makes one family's filter
// table hold exactly rs's chains, given cur, the table as read back.
//
// Only our chains are declared: ":CHAIN - [0:0]" creates a chain or flushes it, and with
// --noflush nothing else in the table is touched, so kube-proxy's, flannel's or anyone's
// rules survive every sync (spec §6: kube-router restores the whole table, kube-router#1248).
// The jump from each built-in chain is left alone when it is already the chain's only jump
// to us and sits at position 1; otherwise every jump to us there is deleted and ours inserted
// at 1, which also replaces kube-router's jumps after a migration. Our chains that rs no
// longer has are flushed and deleted in the same transaction, after nothing jumps to them.
//
// prev maps the chains known to hold given rules (joined by newlines) since the last sync; a
// chain of rs whose rules equal its entry is left out, so a small change restores a small
// text. nil means nothing is known and every chain is written. A restore with nothing to do
// renders emptyRestore.
func renderIPTables(rs Ruleset, cur tableState, prev map[string]string) string {
	var b strings.Builder
	size := 256
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			size += len(ch.Name) + len(r) + 5
		}
	}
	b.Grow(size)
	b.WriteString("*filter\n")
	want := make(map[string]bool, len(rs.Chains))
	changed := make([]Chain, 0, len(rs.Chains))
	for _, ch := range rs.Chains {
		want[ch.Name] = true
		if rules, ok := prev[ch.Name]; ok && rules == strings.Join(ch.Rules, "\n") {
			continue
		}
		changed = append(changed, ch)
		b.WriteString(":" + ch.Name + " - [0:0]\n")
	}
	var stale []string
	for _, name := range cur.ownChains {
		if !want[name] {
			stale = append(stale, name)
			b.WriteString(":" + name + " - [0:0]\n")
		}
	}
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
	for _, ch := range changed {
		for _, r := range ch.Rules {
			b.WriteString("-A " + ch.Name + " " + r + "\n")
		}
	}
	for _, name := range stale {
		b.WriteString("-X " + name + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
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

// renderIPSetCreate renders the ipset restore input that creates every set of sets that
// existing (the names in the kernel) lacks. A set's name is derived from its content, so an
// existing set already holds the right entries and is left alone. A new set is filled under
// a temporary name and renamed at the end, so a restore that fails halfway never leaves a
// half-filled set under a real name for the next sync to trust; a leftover temporary set is
// flushed and reused.
func renderIPSetCreate(sets []IPSet, existing []string) string {
	var b strings.Builder
	size := 0
	for _, s := range sets {
		if _, found := slices.BinarySearch(existing, s.Name); !found {
			size += 128 + len(s.Entries)*(len(s.Name)+24)
		}
	}
	b.Grow(size)
	for _, s := range sets {
		if _, found := slices.BinarySearch(existing, s.Name); found {
			continue
		}
		tmp := tempSetName(s.Name)
		if _, found := slices.BinarySearch(existing, tmp); found {
			b.WriteString("flush " + tmp + "\n")
		} else {
			family := "inet"
			if strings.HasPrefix(s.Name, ipv6SetPrefix) {
				family = "inet6"
			}
			size := 1024
			for size < len(s.Entries) {
				size *= 2
			}
			b.WriteString("create " + tmp + " " + s.Type + " family " + family + " hashsize " + strconv.Itoa(size) +
				" maxelem " + strconv.Itoa(max(65536, 2*size)) + "\n")
		}
		for _, e := range s.Entries {
			b.WriteString("add " + tmp + " " + e + "\n")
		}
		b.WriteString("rename " + tmp + " " + s.Name + "\n")
	}
	return b.String()
}

// tempSetName names the set a new set is filled in before its rename: our prefix, so a
// leftover is swept as stale, and a hash of the final name.
func tempSetName(name string) string {
	prefix := ""
	if strings.HasPrefix(name, ipv6SetPrefix) {
		prefix = ipv6SetPrefix
	}
	return prefix + dstSetPrefix + nameHash("tmp", name)
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
