package netpol

import (
	"cmp"
	"errors"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// This file makes compiling incremental. A whole-state compile of the workload of record
// (5,000 pods, 1,000 policies) costs tens of milliseconds, almost all of it in the policy
// chains and the peer sets, while a pod event changes a handful of them. compileCache keeps
// the parsed objects, each peer set, the named port index and each policy's chains from one
// compile to the next; compile finds what changed by comparing the input with the previous
// one, recomputes the members of the sets a changed pod or namespace could be in, and
// rebuilds the chains of changed policies (and of those using a named port whose numbers
// changed). Pod sets are named after what they stand for, so new members change no chain.
// The result equals a compile from nothing: Compile is exactly that, and a seeded random
// test compares the two over event sequences.
//
// The cache relies on what informers guarantee: an object in the input is never modified,
// an update is a new object.

// objKey identifies a namespaced object.
type objKey struct{ namespace, name string }

// compileCache is what compile keeps between calls. It belongs to one goroutine.
type compileCache struct {
	// gen counts compiles; an entry whose seen is not the current gen was not in the input.
	gen uint64
	// pods holds every pod of the last input by key, accepted or not, as parsed, and
	// podsByObj the same entries by object, so an unchanged pod costs one pointer lookup.
	pods      map[objKey]*cachedPod
	podsByObj map[*corev1.Pod]*cachedPod
	// policies and policiesByObj do the same for policies.
	policies      map[objKey]*cachedPolicy
	policiesByObj map[*networkingv1.NetworkPolicy]*cachedPolicy
	// sorted is the last input's parsed policies sorted by namespace and name; nil when a
	// policy changed since.
	sorted []*policyInfo
	// nsLabels is the namespace label index of the last input.
	nsLabels map[string]map[string]string
	// families holds the per-family caches of the families the last compile programmed.
	families map[corev1.IPFamily]*familyCache
}

// cachedPod is a pod as the last compile parsed it.
type cachedPod struct {
	obj  *corev1.Pod
	info podInfo
	// ok is newPodInfo's verdict: false for pods no policy can select.
	ok   bool
	seen uint64
}

// cachedPolicy is a policy as the last compile parsed it; info is nil when its podSelector
// does not parse.
type cachedPolicy struct {
	obj  *networkingv1.NetworkPolicy
	info *policyInfo
	errs []error
	seen uint64
}

// newCompileCache returns an empty cache: its first compile computes everything.
func newCompileCache() *compileCache {
	return &compileCache{pods: map[objKey]*cachedPod{}, podsByObj: map[*corev1.Pod]*cachedPod{},
		policies: map[objKey]*cachedPolicy{}, policiesByObj: map[*networkingv1.NetworkPolicy]*cachedPolicy{},
		families: map[corev1.IPFamily]*familyCache{}}
}

// compile computes the State of in, as Compile does, from what changed since the last call.
func (cc *compileCache) compile(in Input) (State, error) {
	c := cc.newCompiler(in)
	families := in.Families
	if len(families) == 0 {
		families = familiesOf(in.PodCIDRs)
	}
	var st State
	for _, fam := range families {
		fcache := cc.families[fam]
		if fcache == nil {
			fcache = newFamilyCache()
			cc.families[fam] = fcache
		}
		st.Rulesets = append(st.Rulesets, c.compileFamily(newFamilyCompiler(c, fam, fcache)))
	}
	// A family left out missed this compile's changes, so its cache cannot be trusted.
	maps.DeleteFunc(cc.families, func(fam corev1.IPFamily, _ *familyCache) bool { return !slices.Contains(families, fam) })
	return st, errors.Join(c.problems...)
}

// newCompiler parses in, reusing the cached parse of every object that did not change, and
// records what did.
func (cc *compileCache) newCompiler(in Input) *compiler {
	c := &compiler{in: in, nsLabels: indexNamespaceLabels(in.Namespaces), byNamespace: map[string][]int{},
		policiesByNS: map[string][]int{}}
	c.namespacesChanged = !maps.EqualFunc(cc.nsLabels, c.nsLabels, func(a, b map[string]string) bool { return maps.Equal(a, b) })
	cc.nsLabels = c.nsLabels
	cc.gen++
	cc.updatePods(c)
	cc.updatePolicies(c)
	return c
}

// updatePods fills c.pods, c.podsGone and c.podsCome and makes the cached pods in's.
func (cc *compileCache) updatePods(c *compiler) {
	c.pods = make([]podInfo, 0, len(c.in.Pods))
	seen := 0
	for _, pod := range c.in.Pods {
		e := cc.podsByObj[pod]
		if e == nil {
			e = cc.updatePod(c, pod)
		}
		if e.seen != cc.gen {
			seen++
			e.seen = cc.gen
		}
		if e.ok {
			c.byNamespace[pod.Namespace] = append(c.byNamespace[pod.Namespace], len(c.pods))
			c.pods = append(c.pods, e.info)
		}
	}
	if seen == len(cc.pods) {
		return
	}
	for key, e := range cc.pods {
		if e.seen != cc.gen {
			if e.ok {
				c.podsGone = append(c.podsGone, e.info)
			}
			delete(cc.pods, key)
			delete(cc.podsByObj, e.obj)
		}
	}
}

// updatePod parses a pod object the cache does not know: a new pod or a new version of one.
func (cc *compileCache) updatePod(c *compiler, pod *corev1.Pod) *cachedPod {
	key := objKey{pod.Namespace, pod.Name}
	info, ok := newPodInfo(pod)
	e := cc.pods[key]
	switch {
	case e == nil:
		e = &cachedPod{}
		cc.pods[key] = e
		if ok {
			c.podsCome = append(c.podsCome, info)
		}
	case e.ok == ok && (!ok || samePodInfo(&e.info, &info)):
		// Nothing the rules read changed (a status condition, say), so nothing built from
		// the old version is stale.
		delete(cc.podsByObj, e.obj)
	default:
		delete(cc.podsByObj, e.obj)
		if e.ok {
			c.podsGone = append(c.podsGone, e.info)
		}
		if ok {
			c.podsCome = append(c.podsCome, info)
		}
	}
	e.obj, e.info, e.ok = pod, info, ok
	cc.podsByObj[pod] = e
	return e
}

// samePodInfo reports whether two parses of a pod give the rules the same inputs.
func samePodInfo(a, b *podInfo) bool {
	return a.v4 == b.v4 && a.v6 == b.v6 && slices.Equal(a.ports, b.ports) &&
		a.pod.Spec.NodeName == b.pod.Spec.NodeName && maps.Equal(a.pod.Labels, b.pod.Labels)
}

// updatePolicies fills c.policies, c.policiesByNS and c.problems and makes the cached
// policies in's. An unchanged policy keeps its parsed info (the same pointer), which tells
// the family caches its chains are still good.
func (cc *compileCache) updatePolicies(c *compiler) {
	seen := 0
	for _, np := range c.in.Policies {
		e := cc.policiesByObj[np]
		if e == nil {
			e = cc.updatePolicy(np)
		}
		if e.seen != cc.gen {
			seen++
			e.seen = cc.gen
		}
		c.problems = append(c.problems, e.errs...)
	}
	if seen != len(cc.policies) {
		maps.DeleteFunc(cc.policies, func(_ objKey, e *cachedPolicy) bool {
			if e.seen != cc.gen {
				delete(cc.policiesByObj, e.obj)
				cc.sorted = nil
				return true
			}
			return false
		})
	}
	if cc.sorted == nil {
		cc.sorted = make([]*policyInfo, 0, len(cc.policies))
		for _, e := range cc.policies {
			if e.info != nil {
				cc.sorted = append(cc.sorted, e.info)
			}
		}
		slices.SortFunc(cc.sorted, func(a, b *policyInfo) int {
			return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
		})
	}
	c.policies = cc.sorted
	for i, p := range c.policies {
		c.policiesByNS[p.namespace] = append(c.policiesByNS[p.namespace], i)
	}
}

// updatePolicy parses a policy object the cache does not know: a new policy or a new
// version of one.
func (cc *compileCache) updatePolicy(np *networkingv1.NetworkPolicy) *cachedPolicy {
	key := objKey{np.Namespace, np.Name}
	e := cc.policies[key]
	if e == nil {
		e = &cachedPolicy{}
		cc.policies[key] = e
	} else {
		delete(cc.policiesByObj, e.obj)
	}
	e.obj = np
	e.info, e.errs = parsePolicyInfo(np)
	cc.policiesByObj[np] = e
	cc.sorted = nil
	return e
}

// familyCache is what compile keeps of one family between calls.
type familyCache struct {
	// peerSets holds the set of each rule's selector peers, by the peers' identity.
	peerSets map[string]*peerSetEntry
	// namedPorts maps "name/PROTO" to the port numbers pods of this family serve under it,
	// and each number to those pods' addresses, sorted, with duplicates; nil
	// until first built.
	namedPorts map[string]map[int32][]netip.Addr
	// namedSets holds, per "name/PROTO" some rule uses, the set of each number.
	namedSets map[string]map[int32]IPSet
	// policies holds each policy's chains and what they reference.
	policies map[objKey]*policyEntry
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
}

// policyEntry is one policy's chains in one family and what they reference.
type policyEntry struct {
	// info is the parse the chains were built from; a new parse means a changed policy.
	info   *policyInfo
	chains []Chain
	// ingressChain and egressChain name its chains, "" for a direction it does not isolate.
	ingressChain, egressChain string
	// blockSets are the ipBlock sets the chains reference; the others are in the cache, under
	// peerKeys and namedKeys (the peer sets and "name/PROTO" named ports the chains use), and
	// change members without the chains changing.
	blockSets           []IPSet
	peerKeys, namedKeys []string
}

// collectSets adds the sets e's chains reference, with their current members, to sets.
func (fc *familyCompiler) collectSets(e *policyEntry, sets setCollector) {
	for _, s := range e.blockSets {
		sets[s.Name] = s
	}
	for _, k := range e.peerKeys {
		s := fc.cache.peerSets[k].set
		sets[s.Name] = s
	}
	for _, k := range e.namedKeys {
		for _, s := range fc.cache.namedSets[k] {
			sets[s.Name] = s
		}
	}
}

// newFamilyCache returns an empty family cache.
func newFamilyCache() *familyCache {
	return &familyCache{peerSets: map[string]*peerSetEntry{}, namedSets: map[string]map[int32]IPSet{},
		policies: map[objKey]*policyEntry{}}
}

// refresh brings the cached sets up to date with the changes the compiler recorded, noting
// the named ports whose numbers changed. It runs before any policy entry is looked at.
func (fc *familyCompiler) refresh() {
	fc.refreshNamedPorts()
	changed := fc.changedPods()
	for _, e := range fc.cache.peerSets {
		if !fc.mayChange(e, changed) {
			continue
		}
		// Kept when equal, so States share the entries and compare fast.
		if set := fc.resolvePeerSet(e); !slices.Equal(set.Entries, e.set.Entries) {
			e.set = set
		}
	}
}

// mayChange reports whether a change of this compile can change e's set: a namespace's
// labels changed and e selects namespaces by label, or a changed pod, before or after the
// change, matches one of e's peers.
func (fc *familyCompiler) mayChange(e *peerSetEntry, changed []podInfo) bool {
	for _, sp := range e.peers {
		if sp.namespaces != nil && fc.namespacesChanged {
			return true
		}
	}
	for _, p := range changed {
		for _, sp := range e.peers {
			inNS := p.pod.Namespace == e.namespace
			if sp.namespaces != nil {
				inNS = sp.namespaces.Matches(fc.nsLabelsOf(p.pod.Namespace))
			}
			if inNS && (sp.pods == nil || sp.pods.Matches(labels.Set(p.pod.Labels))) {
				return true
			}
		}
	}
	return false
}

// policyEntry returns p's entry, rebuilt when p changed or a set its chains use changed.
func (fc *familyCompiler) policyEntry(p *policyInfo) *policyEntry {
	key := objKey{p.namespace, p.name}
	e := fc.cache.policies[key]
	if e == nil || e.info != p || slices.ContainsFunc(e.namedKeys, fc.isChangedNamed) {
		e = fc.compilePolicy(p)
		fc.cache.policies[key] = e
	}
	fc.usedPolicies[key] = true
	for _, k := range e.peerKeys {
		fc.usedPeerSets[k] = true
	}
	for _, k := range e.namedKeys {
		fc.usedNamed[k] = true
	}
	return e
}

// prune drops what no policy of this compile uses, so the cache does not grow with history.
func (fc *familyCompiler) prune() {
	maps.DeleteFunc(fc.cache.policies, func(k objKey, _ *policyEntry) bool { return !fc.usedPolicies[k] })
	maps.DeleteFunc(fc.cache.peerSets, func(k string, _ *peerSetEntry) bool { return !fc.usedPeerSets[k] })
	maps.DeleteFunc(fc.cache.namedSets, func(k string, _ map[int32]IPSet) bool { return !fc.usedNamed[k] })
}
