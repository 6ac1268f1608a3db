package netpol

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file keeps one family's compiled outputs between compiles: each policy's chains, the
// sets they reference (counted, so a set goes when its last user does), the local pods and
// the chains and sets of their groups, and the sorted lists the Ruleset is made of.
// compileFamily touches only the entries a change reaches and reuses the previous lists,
// unmodified, when nothing in them changed, so unchanged Rulesets share their slices and
// compare fast.

// familyCache is what compile keeps of one family between calls.
type familyCache struct {
	// built is set once the cache holds the whole state, after its first compile.
	built bool
	// peerSets holds the set of each rule's selector peers, by the peers' identity.
	peerSets map[string]*peerSetEntry
	// namedPorts maps each "name/PROTO" some rule uses to the port numbers pods of this
	// family serve under it, and each number to those pods' addresses, sorted, with
	// duplicates; nil until first built.
	namedPorts map[string]map[int32][]netip.Addr
	// namedSets holds, per "name/PROTO" some rule uses, the set of each number, and
	// namedUsers the policies whose chains use it.
	namedSets  map[string]map[int32]IPSet
	namedUsers map[string]map[objKey]int
	// policies holds each policy's chains and what they reference, and policyChains every
	// policy chain sorted by name.
	policies     map[objKey]*policyEntry
	policyChains []Chain
	// sets holds every set a chain references, by name, with its number of references.
	sets map[string]*setRef
	// locals holds each programmed local pod and its groups; localOrder the same entries
	// sorted by namespace and name.
	locals     map[objKey]*localEntry
	localOrder []*localEntry
	// groups holds each direction's groups of local pods by chain name, groupChains their
	// chains sorted by name.
	groups      map[string]*podGroup
	groupChains []Chain
	// localSet is the set of programmed local pods; its name is "" when the family has no
	// pod CIDR (no default deny).
	localSet IPSet
	// fixed are the chains that do not depend on policies or pods: KUBE-NWPLCY-COMMON,
	// the default chain and the tail chain.
	fixed []Chain
	// last is the previous Ruleset; its slices are never modified, as States share them.
	last Ruleset
}

// peerSetEntry is the set of one combination of selector peers.
type peerSetEntry struct {
	// key is the peers' identity (selectorSet), which the set is named after.
	key string
	// prefix is the set name's prefix (KUBE-SRC- or KUBE-DST-).
	prefix string
	// namespace is the policy's, where peers without namespaceSelector look.
	namespace string
	peers     []selectorPeer
	set       IPSet
	// refs counts the references of policy chains.
	refs int
}

// setRef is one set chains reference and where its current members are.
type setRef struct {
	name string
	refs int
	// Exactly one source: a content-named ipBlock set, a peer set, the set of number num of
	// a named port, or the local pods' set.
	block    *IPSet
	peer     *peerSetEntry
	namedKey string
	num      int32
	local    bool
	group    *podGroup
}

// policyEntry is one policy's chains in one family and what they reference.
type policyEntry struct {
	// info is the parse the chains were built from; a new parse means a changed policy.
	info *policyInfo
	// chains are the ingress chain, then the egress chain, of the directions it isolates.
	chains []Chain
	// peerKeys and namedKeys are the peer sets and "name/PROTO" named ports the chains use,
	// whose members change without the chains changing.
	peerKeys, namedKeys []string
	// sets are every set the chains reference, as counted in familyCache.sets (where each
	// is the same setRef once counted), with where their members are.
	sets []*setRef
}

// chain returns the name of the policy's chain of a direction it isolates.
func (e *policyEntry) chain(dir string) string {
	if dir == dirIngress {
		return e.chains[0].Name
	}
	return e.chains[len(e.chains)-1].Name
}

// localEntry is a programmed local pod and the groups its two directions go through.
type localEntry struct {
	key     objKey
	lp      localPod
	in, out *podGroup
}

// podGroup is one direction's group of local pods: its chain, their addresses (sorted, once
// per pod: two pods may briefly share one) and the set of those addresses.
type podGroup struct {
	key   podGroupKey
	chain Chain
	addrs []netip.Addr
	set   IPSet
}

// newFamilyCache returns an empty family cache.
func newFamilyCache() *familyCache {
	return &familyCache{peerSets: map[string]*peerSetEntry{}, namedSets: map[string]map[int32]IPSet{},
		namedUsers: map[string]map[objKey]int{}, policies: map[objKey]*policyEntry{}, sets: map[string]*setRef{},
		locals: map[objKey]*localEntry{}, groups: map[string]*podGroup{}}
}

// compileFamily computes one family's ruleset, rebuilding only the policy chains, sets and
// pod groups this compile's changes reach.
func (c *compiler) compileFamily(fc *familyCompiler) Ruleset {
	fresh := !fc.cache.built
	fc.refresh()
	fc.updatePolicies(fresh)
	if fresh {
		fc.pruneNamedPorts()
	}
	fc.updateLocals(fresh)
	if fresh {
		fc.cache.fixed = []Chain{fc.commonChain(), {Name: ChainDefault, Rules: []string{"-j MARK --set-xmark " + markMatched}}, fc.tailChain()}
	}
	fc.cache.built = true
	rs := fc.cache.last
	rs.Family = fc.fam
	if fc.chainsChanged || fresh {
		groups := make([]podGroupKey, len(fc.cache.groupChains))
		for i, ch := range fc.cache.groupChains {
			groups[i] = fc.cache.groups[ch.Name].key
		}
		rs.Chains = make([]Chain, 0, 3+len(fc.cache.fixed)+len(fc.cache.policyChains)+len(fc.cache.groupChains))
		rs.Chains = append(rs.Chains, fc.topLevelChains(groups)...)
		rs.Chains = append(rs.Chains, fc.cache.fixed...)
		rs.Chains = append(rs.Chains, fc.cache.policyChains...)
		rs.Chains = append(rs.Chains, fc.cache.groupChains...)
	}
	rs.Sets = fc.outputSets(rs.Sets, fresh)
	fc.cache.last = rs
	return rs
}

// refresh brings the cached sets up to date with the changes the compiler recorded, noting
// the named ports whose numbers changed. It runs before any policy entry is looked at.
func (fc *familyCompiler) refresh() {
	fc.refreshNamedPorts()
	changed := fc.changedPods()
	if len(changed) == 0 && !fc.namespacesChanged {
		return
	}
	for _, e := range fc.cache.peerSets {
		set := e.set
		if moved := fc.movedPeers(e, changed); moved == nil {
			// A namespace's labels changed and e selects namespaces by label, or many pods
			// changed: resolved from the pods.
			set = fc.resolvePeerSet(e)
		} else {
			// Only the moved addresses can come or go.
			for _, a := range moved {
				set.Entries = fc.withEntry(set.Entries, a, fc.peerSetHas(e, a))
			}
		}
		// Kept when equal, so States share the entries and compare fast.
		if !slices.Equal(set.Entries, e.set.Entries) {
			e.set = set
			fc.setChanged(set.Name)
		}
	}
}

// maxIncrementalMoves is how many addresses a set's members are edited one by one for;
// beyond it they are recomputed.
const maxIncrementalMoves = 64

// movedPeers returns the addresses, in this family, of the changed pods that one of e's
// peers selects before or after the change, or nil when e must be resolved again: a
// namespace's labels changed and e selects namespaces by label, or too many pods moved.
func (fc *familyCompiler) movedPeers(e *peerSetEntry, changed []podInfo) []netip.Addr {
	for _, sp := range e.peers {
		if sp.namespaces != nil && fc.namespacesChanged {
			return nil
		}
	}
	moved := []netip.Addr{}
	for i := range changed {
		p := &changed[i]
		if a := p.addr(fc.fam); a.IsValid() && fc.peersSelect(e, p) {
			if len(moved) == maxIncrementalMoves {
				return nil
			}
			moved = append(moved, a)
		}
	}
	return moved
}

// peersSelect reports whether one of e's peers selects pod p.
func (fc *familyCompiler) peersSelect(e *peerSetEntry, p *podInfo) bool {
	for _, sp := range e.peers {
		inNS := p.pod.Namespace == e.namespace
		if sp.namespaces != nil {
			inNS = sp.namespaces.Matches(fc.nsLabelsOf(p.pod.Namespace))
		}
		if inNS && (sp.pods == nil || sp.pods.Matches(labels.Set(p.pod.Labels))) {
			return true
		}
	}
	return false
}

// peerSetHas reports whether a current pod with address a is one e's peers select.
func (fc *familyCompiler) peerSetHas(e *peerSetEntry, a netip.Addr) bool {
	for _, p := range fc.cc.podsAt(a) {
		if p.info.addr(fc.fam) == a && fc.peersSelect(e, &p.info) {
			return true
		}
	}
	return false
}

// withEntry returns entries (set entries sorted by address) with a's entry if present, else
// without it; a changed list is a new one, as States share the old.
func (fc *familyCompiler) withEntry(entries []string, a netip.Addr, present bool) []string {
	i, found := slices.BinarySearchFunc(entries, a, func(entry string, a netip.Addr) int {
		b, _ := netip.ParseAddr(entry)
		return b.Compare(a)
	})
	switch {
	case found == present:
		return entries
	case present:
		out := make([]string, 0, len(entries)+1)
		out = append(append(out, entries[:i]...), fc.cc.entry(a))
		return append(out, entries[i:]...)
	default:
		out := make([]string, 0, len(entries)-1)
		return append(append(out, entries[:i]...), entries[i+1:]...)
	}
}

// updatePolicies rebuilds the entries of the policies that changed, or of every policy on a
// fresh cache, and of those using a named port whose numbers changed, keeping policyChains
// sorted.
func (fc *familyCompiler) updatePolicies(fresh bool) {
	todo := fc.policyChanges
	if fresh {
		todo = map[objKey]*policyInfo{}
		for _, list := range fc.policiesByNS {
			for _, p := range list {
				todo[objKey{p.namespace, p.name}] = p
			}
		}
	}
	if len(fc.changedNamed) > 0 {
		todo = maps.Clone(todo)
		for key := range fc.changedNamed {
			for user := range fc.cache.namedUsers[key] {
				if _, ok := todo[user]; !ok {
					todo[user] = fc.cache.policies[user].info
				}
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	var gone []string
	var added []Chain
	for key, p := range todo {
		old := fc.cache.policies[key]
		if p != nil {
			e := fc.compilePolicy(p)
			fc.ref(key, e)
			fc.cache.policies[key] = e
			added = append(added, e.chains...)
		} else {
			delete(fc.cache.policies, key)
		}
		if old != nil {
			fc.unref(key, old)
			for _, ch := range old.chains {
				gone = append(gone, ch.Name)
			}
		}
	}
	fc.chainsChanged = true
	fc.cache.policyChains = editChains(fc.cache.policyChains, gone, added)
}

// editChains returns chains (sorted by name) without the chains named gone and with added.
// A few edits are made in place, one binary search each, so an event does not sort every
// policy's chains again.
func editChains(chains []Chain, gone []string, added []Chain) []Chain {
	byName := func(ch Chain, name string) int { return cmp.Compare(ch.Name, name) }
	if len(gone)+len(added) > maxIncrementalMoves {
		goneSet := make(map[string]bool, len(gone))
		for _, name := range gone {
			goneSet[name] = true
		}
		chains = slices.DeleteFunc(chains, func(ch Chain) bool { return goneSet[ch.Name] })
		chains = append(chains, added...)
		slices.SortFunc(chains, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })
		return chains
	}
	for _, name := range gone {
		if i, found := slices.BinarySearchFunc(chains, name, byName); found {
			chains = slices.Delete(chains, i, i+1)
		}
	}
	for _, ch := range added {
		i, _ := slices.BinarySearchFunc(chains, ch.Name, byName)
		chains = slices.Insert(chains, i, ch)
	}
	return chains
}

// ref counts the sets and named ports of policy key's new entry e; unref uncounts those
// of an entry dropped, deleting what nothing uses any more, so the cache does not grow with
// history. ref runs before the old entry's unref, so what both use stays.
func (fc *familyCompiler) ref(key objKey, e *policyEntry) {
	for _, k := range e.peerKeys {
		fc.cache.peerSets[k].refs++
	}
	for _, k := range e.namedKeys {
		users := fc.cache.namedUsers[k]
		if users == nil {
			users = map[objKey]int{}
			fc.cache.namedUsers[k] = users
		}
		users[key]++
	}
	for _, u := range e.sets {
		r := fc.cache.sets[u.name]
		if r == nil {
			r = u
			fc.cache.sets[u.name] = r
			fc.setsAddedOrGone = true
		}
		r.refs++
	}
}

func (fc *familyCompiler) unref(key objKey, e *policyEntry) {
	for _, k := range e.peerKeys {
		ps := fc.cache.peerSets[k]
		ps.refs--
		if ps.refs == 0 {
			delete(fc.cache.peerSets, k)
		}
	}
	for _, k := range e.namedKeys {
		users := fc.cache.namedUsers[k]
		users[key]--
		if users[key] == 0 {
			delete(users, key)
		}
		if len(users) == 0 {
			delete(fc.cache.namedUsers, k)
			delete(fc.cache.namedSets, k)
			delete(fc.cache.namedPorts, k)
		}
	}
	for _, u := range e.sets {
		r := fc.cache.sets[u.name]
		r.refs--
		if r.refs == 0 {
			delete(fc.cache.sets, u.name)
			fc.setsAddedOrGone = true
		}
	}
}

// content returns the current members of a referenced set.
func (fc *familyCompiler) content(r *setRef) IPSet {
	switch {
	case r.block != nil:
		return *r.block
	case r.peer != nil:
		return r.peer.set
	case r.local:
		return fc.cache.localSet
	case r.group != nil:
		return r.group.set
	default:
		return fc.cache.namedSets[r.namedKey][r.num]
	}
}

// setChanged notes that the members of set name changed in this compile.
func (fc *familyCompiler) setChanged(name string) {
	if fc.changedSets == nil {
		fc.changedSets = map[string]bool{}
	}
	fc.changedSets[name] = true
}

// outputSets returns the sorted sets of the Ruleset: prev itself when no set changed, a
// patched copy when only members changed, a new list when a set came or went.
func (fc *familyCompiler) outputSets(prev []IPSet, fresh bool) []IPSet {
	if fresh || fc.setsAddedOrGone {
		names := slices.Sorted(maps.Keys(fc.cache.sets))
		out := make([]IPSet, len(names))
		for i, name := range names {
			out[i] = fc.content(fc.cache.sets[name])
		}
		return out
	}
	if len(fc.changedSets) == 0 {
		return prev
	}
	out := slices.Clone(prev)
	for name := range fc.changedSets {
		i, found := slices.BinarySearchFunc(out, name, func(s IPSet, name string) int { return cmp.Compare(s.Name, name) })
		if found {
			out[i] = fc.content(fc.cache.sets[name])
		}
	}
	return out
}

// updateLocals moves the local pods this compile touches between groups: those that
// changed, and those of namespaces whose policies changed; on a fresh cache, every one.
func (fc *familyCompiler) updateLocals(fresh bool) {
	touched := map[objKey]bool{}
	switch {
	case fresh:
		for _, pods := range fc.byNamespace {
			for _, p := range pods {
				if p.ok && fc.isLocal(&p.info) {
					touched[p.info.key()] = true
				}
			}
		}
	default:
		for _, p := range fc.changedPods() {
			if fc.isLocal(&p) {
				touched[objKey{p.pod.Namespace, p.pod.Name}] = true
			}
		}
		for ns := range fc.policyNSChanged {
			for _, p := range fc.byNamespace[ns] {
				if p.ok && fc.isLocal(&p.info) {
					touched[p.info.key()] = true
				}
			}
		}
	}
	edits := groupEdits{changed: map[*podGroup]bool{}}
	membership := false
	for key := range touched {
		if fc.updateLocal(key, &edits) {
			membership = true
		}
	}
	fc.finishGroups(&edits)
	if membership || fresh {
		fc.cache.localOrder = slices.SortedFunc(maps.Values(fc.cache.locals), func(a, b *localEntry) int { return compareObjKey(a.key, b.key) })
		if fc.cache.localSet.Name != "" || fresh {
			fc.updateLocalSet()
		}
	}
}

// groupEdits collects what one compile changed in the pod groups: groups whose members
// changed, and the chains of groups that came or went.
type groupEdits struct {
	changed map[*podGroup]bool
	gone    []string
	added   []Chain
}

// isLocal reports whether a pod runs on the node and has an address of the family: a pod
// that is programmed.
func (fc *familyCompiler) isLocal(p *podInfo) bool {
	return fc.in.NodeName != "" && p.pod.Spec.NodeName == fc.in.NodeName && p.addr(fc.fam).IsValid()
}

// updateLocal puts local pod key in the groups of the policies that now select it, or takes
// it out of its groups when the pod is gone or no longer local. It reports whether the pod
// came, went or changed address, which changes the local pods' set.
func (fc *familyCompiler) updateLocal(key objKey, edits *groupEdits) bool {
	old := fc.cache.locals[key]
	p := fc.cc.pod(key)
	if p == nil || !p.ok || !fc.isLocal(&p.info) {
		if old == nil {
			return false
		}
		delete(fc.cache.locals, key)
		fc.leaveGroup(old.in, old.lp.addr, edits)
		fc.leaveGroup(old.out, old.lp.addr, edits)
		return true
	}
	lp := fc.localPod(&p.info)
	// Joined before the old groups are left, so a group the pod stays in is not dropped and
	// made again.
	le := &localEntry{key: key, lp: lp,
		in:  fc.joinGroup(fc.podGroupKeyOf(dirIngress, lp.ingress), lp.addr, edits),
		out: fc.joinGroup(fc.podGroupKeyOf(dirEgress, lp.egress), lp.addr, edits)}
	if old != nil {
		fc.leaveGroup(old.in, old.lp.addr, edits)
		fc.leaveGroup(old.out, old.lp.addr, edits)
	}
	fc.cache.locals[key] = le
	return old == nil || old.lp.addr != le.lp.addr
}

// joinGroup adds address a to group k, making the group when it is new.
func (fc *familyCompiler) joinGroup(k podGroupKey, a netip.Addr, edits *groupEdits) *podGroup {
	g := fc.cache.groups[k.chain]
	if g == nil {
		g = &podGroup{key: k, chain: podGroupChain(k), set: IPSet{Name: k.set, Type: setTypeIP, Family: fc.fam, DeleteLast: true}}
		fc.cache.groups[k.chain] = g
		fc.cache.sets[k.set] = &setRef{name: k.set, refs: 1, group: g}
		fc.setsAddedOrGone, fc.chainsChanged = true, true
		edits.added = append(edits.added, g.chain)
	}
	i, _ := slices.BinarySearchFunc(g.addrs, a, netip.Addr.Compare)
	g.addrs = slices.Insert(g.addrs, i, a)
	edits.changed[g] = true
	return g
}

// leaveGroup removes address a from group g, dropping the group when it empties.
func (fc *familyCompiler) leaveGroup(g *podGroup, a netip.Addr, edits *groupEdits) {
	if i, found := slices.BinarySearchFunc(g.addrs, a, netip.Addr.Compare); found {
		g.addrs = slices.Delete(g.addrs, i, i+1)
	}
	edits.changed[g] = true
	if len(g.addrs) > 0 {
		return
	}
	delete(fc.cache.groups, g.key.chain)
	delete(fc.cache.sets, g.key.set)
	fc.setsAddedOrGone, fc.chainsChanged = true, true
	edits.gone = append(edits.gone, g.key.chain)
}

// finishGroups brings the chains of the groups and the sets of those whose members changed
// up to date.
func (fc *familyCompiler) finishGroups(edits *groupEdits) {
	if len(edits.gone)+len(edits.added) > 0 {
		// A group may go and come back, or come and go, within one compile: what counts is
		// whether it existed before and whether it exists now.
		byName := func(ch Chain, name string) int { return cmp.Compare(ch.Name, name) }
		existed := func(name string) bool {
			_, found := slices.BinarySearchFunc(fc.cache.groupChains, name, byName)
			return found
		}
		seen := map[string]bool{}
		var gone []string
		for _, name := range edits.gone {
			if !seen[name] && fc.cache.groups[name] == nil && existed(name) {
				gone = append(gone, name)
			}
			seen[name] = true
		}
		var added []Chain
		for _, ch := range edits.added {
			if !seen[ch.Name] && fc.cache.groups[ch.Name] != nil && !existed(ch.Name) {
				added = append(added, ch)
			}
			seen[ch.Name] = true
		}
		fc.cache.groupChains = editChains(fc.cache.groupChains, gone, added)
	}
	for g := range edits.changed {
		if fc.cache.groups[g.key.chain] != g {
			continue // dropped
		}
		if entries := fc.sortedAddrEntries(g.addrs); !slices.Equal(entries, g.set.Entries) {
			g.set.Entries = entries
			fc.setChanged(g.set.Name)
		}
	}
}

// updateLocalSet recomputes the set of programmed local pods.
func (fc *familyCompiler) updateLocalSet() {
	name := ""
	for _, c := range fc.in.PodCIDRs {
		if c.Addr().Is6() == (fc.fam == corev1.IPv6Protocol) {
			name = ProgrammedPodsSet(fc.fam)
		}
	}
	if name == "" {
		return
	}
	addrs := make([]netip.Addr, len(fc.cache.localOrder))
	for i, le := range fc.cache.localOrder {
		addrs[i] = le.lp.addr
	}
	fc.cache.localSet = IPSet{Name: name, Type: setTypeIP, Family: fc.fam, Entries: fc.addrEntries(addrs), AddLast: true}
	if fc.cache.sets[name] == nil {
		fc.cache.sets[name] = &setRef{name: name, refs: 1, local: true}
		fc.setsAddedOrGone = true
	}
	fc.setChanged(name)
}
