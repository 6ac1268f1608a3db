package netpol

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// directionRules compiles the rules of one direction. The pod chain enters this chain only
// for packets of that direction of a pod the policy selects (-d pod for ingress, -s pod for
// egress), so the rules only need to match the remote end (side) and the port. A rule that
// matches sets the "matched" mark; nothing matching leaves it unset and the pod chain rejects
// (an isolated direction with no rule denies everything).
func (fc *familyCompiler) directionRules(p *policyInfo, rules []ruleInfo, side, prefix string) []string {
	// Built in a scratch list and copied at its size: a list grown by append would leave
	// its smaller copies as garbage among what the cache keeps, and keep spare capacity.
	out := fc.scratchRules[:0]
	for i := range rules {
		r := &rules[i]
		// API (rule): "The traffic must match both ports and from/to."
		peers := fc.peerMatches(p, r, prefix)
		ports := fc.portMatches(r)
		for _, set := range peers {
			for _, po := range ports {
				out = append(out, fc.rule(set, side, po))
			}
		}
	}
	fc.scratchRules = out[:0]
	if len(out) == 0 {
		return nil
	}
	return slices.Clone(out)
}

// rule returns the policy rule matching the remote end against set on side ("" matches
// every peer) and po, which marks the packet matched. It is built in a scratch buffer and
// interned: policies share rules (a thousand policies allow DNS alike), so most are built
// already and need no new string.
func (fc *familyCompiler) rule(set, side, po string) string {
	b := fc.scratch[:0]
	if set != "" {
		b = append(append(append(append(b, "-m set --match-set "...), set...), ' '), side...)
	}
	for _, part := range []string{po, "-j MARK --set-xmark " + markMatched} {
		if part == "" {
			continue
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, part...)
	}
	fc.scratch = b
	return fc.internBytes(b)
}

// peerMatches returns the alternative matches of a rule's remote end as the sets they match:
// one "" for "any peer", else one set for its selector peers and one for its ipBlocks.
// Peers are OR-ed, which is the alternatives being separate rules.
func (fc *familyCompiler) peerMatches(p *policyInfo, r *ruleInfo, prefix string) []string {
	if r.anyPeer {
		return anyMatch
	}
	out := fc.scratchPeers[:0]
	if len(r.selectorPeers) > 0 {
		out = append(out, fc.selectorSet(p, r, prefix))
	}
	if prefixes := r.blockNets(fc.fam); len(prefixes) > 0 {
		// Rule lists are shared by the policies that repeat them, and so is the set of
		// their ipBlocks: rendered once per rule and family.
		set, ok := fc.blockSetOf[r]
		if !ok {
			entries := make([]string, len(prefixes))
			for i, pr := range prefixes {
				entries[i] = pr.String()
			}
			set = IPSet{Name: setName(prefix, fc.fam, setTypeNet, entries), Type: setTypeNet, Family: fc.fam, Entries: entries}
			fc.blockSetOf[r] = set
		}
		if _, ok := fc.sets[set.Name]; !ok {
			fc.sets[set.Name] = set
		}
		out = append(out, set.Name)
	}
	fc.scratchPeers = out
	return out
}

// anyMatch is the one alternative of a rule matching every peer or every port.
var anyMatch = []string{""}

// selectorSet returns the name of the hash:ip set of the pods a rule's selector peers select.
// Rules of many policies share selectors (the workload's 200 "env In [prod]" rules), so the
// set is kept in the cache under the peers' identity, resolved once, and named after it.
func (fc *familyCompiler) selectorSet(p *policyInfo, r *ruleInfo, prefix string) string {
	var key strings.Builder
	key.WriteString(prefix)
	for _, sp := range r.selectorPeers {
		key.WriteString("\x00")
		if sp.namespaces == nil {
			key.WriteString("ns=" + p.namespace)
		} else {
			key.WriteString("nssel=" + sp.namespaces.String())
		}
		if sp.pods != nil {
			key.WriteString("\x01pods=" + sp.pods.String())
		}
	}
	k := key.String()
	e := fc.cache.peerSets[k]
	if e == nil {
		e = &peerSetEntry{key: k, prefix: prefix, namespace: p.namespace, peers: r.selectorPeers}
		e.set = fc.resolvePeerSet(e)
		fc.cache.peerSets[k] = e
	}
	// The entry's key, not k: policies sharing the set share one string.
	fc.peerKeys = append(fc.peerKeys, e.key)
	return e.set.Name
}

// resolvePeerSet computes the set of a peer set entry from the current pods and namespaces.
//
// API (NetworkPolicyPeer): podSelector alone selects pods of the policy's
// namespace; namespaceSelector alone every pod of the selected namespaces; both, the pods
// matching podSelector in the selected namespaces.
func (fc *familyCompiler) resolvePeerSet(e *peerSetEntry) IPSet {
	// The addresses are gathered in scratch space: only the entries are kept.
	addrs := fc.scratchAddrs[:0]
	for _, sp := range e.peers {
		var namespaces []string
		if sp.namespaces == nil {
			namespaces = []string{e.namespace}
		} else {
			for ns, l := range fc.nsLabels {
				if sp.namespaces.Matches(labels.Set(l)) {
					namespaces = append(namespaces, ns)
				}
			}
			// A namespace with pods but no Namespace object (not yet in the cache) carries only
			// its name label.
			for ns := range fc.byNamespace {
				if _, known := fc.nsLabels[ns]; !known && sp.namespaces.Matches(labels.Set{corev1.LabelMetadataName: ns}) {
					namespaces = append(namespaces, ns)
				}
			}
		}
		for _, ns := range namespaces {
			for _, p := range fc.byNamespace[ns] {
				a := p.info.addr(fc.fam)
				if !p.ok || !a.IsValid() || (sp.pods != nil && !sp.pods.Matches(labels.Set(p.info.pod.Labels))) {
					continue
				}
				addrs = append(addrs, a)
			}
		}
	}
	fc.scratchAddrs = addrs[:0]
	name := identitySetName(e.prefix, fc.fam, setTypeIP, "peers\x00"+e.key)
	return IPSet{Name: name, Type: setTypeIP, Family: fc.fam, Entries: fc.addrEntries(addrs)}
}

// portMatches returns the alternative port matches of a rule: one empty match for "every
// port", else one per numeric entry and one per number a named entry resolves to.
func (fc *familyCompiler) portMatches(r *ruleInfo) []string {
	if r.anyPort {
		return anyMatch
	}
	out := fc.scratchPorts[:0]
	for _, p := range r.ports {
		proto := strings.ToLower(string(p.proto))
		switch {
		case p.named != "":
			out = fc.namedPortMatches(out, proto, p)
		case p.first == 0:
			// A protocol without port is every port of that protocol.
			out = append(out, fc.portMatch("", proto, 0, 0))
		default:
			out = append(out, fc.portMatch("", proto, p.first, p.last))
		}
	}
	fc.scratchPorts = out
	return out
}

// namedPortMatches resolves a named port on the destination of the connection:
// one match per number the name has, each requiring the destination to be a pod that serves
// the name under that number with that protocol. The destination is the selected pod for
// ingress and the peer for egress; either way "-m set ... dst" over every pod serving it is
// exact, and an egress rule without "to" thus reaches such pods in every namespace (kube-router
// resolves only the policy's namespace and opens the port to any address).
func (fc *familyCompiler) namedPortMatches(out []string, proto string, p portInfo) []string {
	key := fc.namedKey(p)
	byNum := fc.namedPortsOf(key)
	nums := slices.Sorted(maps.Keys(byNum))
	sets := fc.cache.namedSets[key]
	if sets == nil {
		sets = map[int32]IPSet{}
		fc.cache.namedSets[key] = sets
	}
	fc.namedKeys = append(fc.namedKeys, key)
	for _, n := range nums {
		set, ok := sets[n]
		if !ok {
			set = fc.namedPortSet(key, n, byNum[n])
			sets[n] = set
			fc.setChanged(set.Name)
		}
		out = append(out, fc.portMatch(set.Name, proto, n, n))
	}
	return out
}

// namedKey returns the "name/PROTO" of a named port entry, one string per key in a compile
// (the policies' entries keep it).
func (fc *familyCompiler) namedKey(p portInfo) string {
	b := append(append(append(fc.scratch[:0], p.named...), '/'), p.proto...)
	fc.scratch = b
	return fc.internBytes(b)
}

// portMatch returns the match of protocol proto and destination ports first to last (none
// when 0) and, when set is not "", of destination addresses in set, interned.
func (fc *familyCompiler) portMatch(set, proto string, first, last int32) string {
	b := fc.scratch[:0]
	if set != "" {
		b = append(append(append(b, "-m set --match-set "...), set...), " dst "...)
	}
	b = append(append(b, "-p "...), proto...)
	if first != 0 {
		b = strconv.AppendInt(append(append(append(b, " -m "...), proto...), " --dport "...), int64(first), 10)
		if last != first {
			b = strconv.AppendInt(append(b, ':'), int64(last), 10)
		}
	}
	fc.scratch = b
	return fc.internBytes(b)
}

// namedPortSet returns the set of the pods (addrs, sorted) serving the named port key
// ("name/PROTO") under number n.
func (fc *familyCompiler) namedPortSet(key string, n int32, addrs []netip.Addr) IPSet {
	name := identitySetName(dstSetPrefix, fc.fam, setTypeIP, "named\x00"+key+"\x00"+strconv.Itoa(int(n)))
	return IPSet{Name: name, Type: setTypeIP, Family: fc.fam, Entries: fc.sortedAddrEntries(addrs)}
}
