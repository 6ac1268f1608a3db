package netpol

import (
	"net/netip"
	"slices"
	"strings"
)

// tableState is what a sync reads back from one family's filter table before rendering: the
// names of the chains we own and the rules of the built-in chains that jump to a top-level
// chain of ours. Foreign rules are read only to find their positions, never rewritten (only
// our own chains are touched).
type tableState struct {
	// ownChains lists our chains present in the table, sorted.
	ownChains []string
	// jumps maps INPUT/FORWARD/OUTPUT to the rules that jump to one of our top-level chains
	// (KUBE-ROUTER-INPUT/FORWARD/OUTPUT), in order; jumps to other KUBE-ROUTER-* chains are
	// not ours.
	jumps map[string][]builtinRule
}

// builtinRule is one rule of a built-in chain as iptables-save prints it, without the
// leading "-A CHAIN ".
type builtinRule struct {
	// pos is the 1-based position of the rule in its chain.
	pos  int
	rule string
}

// parseIPTablesSave reads the filter table of an iptables-save dump.
func parseIPTablesSave(text string) tableState {
	st := tableState{jumps: map[string][]builtinRule{}}
	pos := map[string]int{}
	inFilter := false
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "*"):
			inFilter = line == "*filter"
		case !inFilter:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			if isOwnChain(name) {
				st.ownChains = append(st.ownChains, name)
			}
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[3:], " ")
			if chain != "INPUT" && chain != "FORWARD" && chain != "OUTPUT" {
				continue
			}
			pos[chain]++
			if isTopLevelChain(jumpTarget(rule)) {
				st.jumps[chain] = append(st.jumps[chain], builtinRule{pos: pos[chain], rule: rule})
			}
		}
	}
	slices.Sort(st.ownChains)
	return st
}

// jumpTarget returns the target of a rule in iptables-save syntax ("-j X" or "-g X").
func jumpTarget(rule string) string {
	fields := strings.Fields(rule)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "-j" || fields[i] == "-g" {
			return fields[i+1]
		}
	}
	return ""
}

// parseSetNames reads the output of `ipset list -n`.
func parseSetNames(text string) []string {
	var names []string
	for line := range strings.Lines(text) {
		if name := strings.TrimSpace(line); name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// parseIPSetSave reads the members of our hash:ip sets from the output of `ipset save`: each
// set's entries in the order printed, normalized as Compile writes them; a set without
// members maps to an empty list.
func parseIPSetSave(text string) map[string][]string {
	out := map[string][]string{}
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[0] == "create" && fields[2] == setTypeIP && isOwnSet(fields[1]):
			out[fields[1]] = []string{}
		case len(fields) >= 3 && fields[0] == "add":
			entries, ok := out[fields[1]]
			if !ok {
				continue
			}
			entry := fields[2]
			if a, err := netip.ParseAddr(entry); err == nil {
				entry = a.Unmap().String()
			}
			out[fields[1]] = append(entries, entry)
		}
	}
	return out
}
