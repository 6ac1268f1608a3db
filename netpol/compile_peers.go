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
	var out []string
	for i := range rules {
		r := &rules[i]
		// API (rule): "The traffic must match both ports and from/to."
		peers := fc.peerMatches(p, r, side, prefix)
		ports := fc.portMatches(r)
		for _, pm := range peers {
			for _, po := range ports {
				out = append(out, fc.intern(joinMatches(pm, po, "-j MARK --set-xmark "+markMatched)))
			}
		}
	}
	return out
}

// joinMatches joins the non-empty parts of a rule with spaces.
func joinMatches(parts ...string) string {
	var b strings.Builder
	// Sized once: growing would leave a garbage buffer per size, scattered among what
	// the cache keeps.
	n := 0
	for _, s := range parts {
		n += len(s) + 1
	}
	b.Grow(n)
	for _, s := range parts {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// peerMatches returns the alternative matches of a rule's remote end: one empty match for
// "any peer", else one set match for its selector peers and one for its ipBlocks. Peers are
// OR-ed, which is the alternatives being separate rules.
func (fc *familyCompiler) peerMatches(p *policyInfo, r *ruleInfo, side, prefix string) []string {
	if r.anyPeer {
		return []string{""}
	}
	var out []string
	if len(r.selectorPeers) > 0 {
		out = append(out, "-m set --match-set "+fc.selectorSet(p, r, prefix)+" "+side)
	}
	if prefixes := r.blockNets(fc.fam); len(prefixes) > 0 {
		entries := make([]string, len(prefixes))
		for i, pr := range prefixes {
			entries[i] = pr.String()
		}
		out = append(out, "-m set --match-set "+fc.sets.add(prefix, fc.fam, setTypeNet, entries)+" "+side)
	}
	return out
}

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
	fc.building.peerKeys = append(fc.building.peerKeys, e.key)
	return e.set.Name
}

// resolvePeerSet computes the set of a peer set entry from the current pods and namespaces.
//
// API (NetworkPolicyPeer): podSelector alone selects pods of the policy's
// namespace; namespaceSelector alone every pod of the selected namespaces; both, the pods
// matching podSelector in the selected namespaces.
func (fc *familyCompiler) resolvePeerSet(e *peerSetEntry) IPSet {
	var addrs []netip.Addr
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
	name := identitySetName(e.prefix, fc.fam, setTypeIP, "peers\x00"+e.key)
	return IPSet{Name: name, Type: setTypeIP, Family: fc.fam, Entries: addrEntries(addrs)}
}

// portMatches returns the alternative port matches of a rule: one empty match for "every
// port", else one per numeric entry and one per number a named entry resolves to.
func (fc *familyCompiler) portMatches(r *ruleInfo) []string {
	if r.anyPort {
		return []string{""}
	}
	var out []string
	for _, p := range r.ports {
		proto := strings.ToLower(string(p.proto))
		switch {
		case p.named != "":
			out = append(out, fc.namedPortMatches(proto, p)...)
		case p.first == 0:
			// A protocol without port is every port of that protocol.
			out = append(out, "-p "+proto)
		case p.first == p.last:
			out = append(out, "-p "+proto+" -m "+proto+" --dport "+strconv.Itoa(int(p.first)))
		default:
			out = append(out, "-p "+proto+" -m "+proto+" --dport "+strconv.Itoa(int(p.first))+":"+strconv.Itoa(int(p.last)))
		}
	}
	return out
}

// namedPortMatches resolves a named port on the destination of the connection:
// one match per number the name has, each requiring the destination to be a pod that serves
// the name under that number with that protocol. The destination is the selected pod for
// ingress and the peer for egress; either way "-m set ... dst" over every pod serving it is
// exact, and an egress rule without "to" thus reaches such pods in every namespace (kube-router
// resolves only the policy's namespace and opens the port to any address).
func (fc *familyCompiler) namedPortMatches(proto string, p portInfo) []string {
	key := p.named + "/" + string(p.proto)
	byNum := fc.namedPortsOf(key)
	nums := slices.Sorted(maps.Keys(byNum))
	sets := fc.cache.namedSets[key]
	if sets == nil {
		sets = map[int32]IPSet{}
		fc.cache.namedSets[key] = sets
	}
	fc.building.namedKeys = append(fc.building.namedKeys, key)
	out := make([]string, 0, len(nums))
	for _, n := range nums {
		set, ok := sets[n]
		if !ok {
			set = fc.namedPortSet(key, n, byNum[n])
			sets[n] = set
			fc.setChanged(set.Name)
		}
		out = append(out, "-m set --match-set "+set.Name+" dst -p "+proto+" -m "+proto+" --dport "+strconv.Itoa(int(n)))
	}
	return out
}

// namedPortSet returns the set of the pods (addrs, sorted) serving the named port key
// ("name/PROTO") under number n.
func (fc *familyCompiler) namedPortSet(key string, n int32, addrs []netip.Addr) IPSet {
	name := identitySetName(dstSetPrefix, fc.fam, setTypeIP, "named\x00"+key+"\x00"+strconv.Itoa(int(n)))
	return IPSet{Name: name, Type: setTypeIP, Family: fc.fam, Entries: sortedAddrEntries(addrs)}
}
