package netpol

import (
	"cmp"
	"errors"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// This file makes compiling incremental. A whole-state compile of the workload of record
// (5,000 pods, 1,000 policies) costs tens of milliseconds, almost all of it in the policy
// chains and the peer sets, while a pod event changes a handful of them. compileCache keeps
// the parsed objects, the per-namespace and local pod indexes, each peer set, the named port
// index, each policy's chains, each local pod's chain and the sorted outputs from one compile
// to the next; compile finds what changed by comparing the input with the previous one (one
// pointer lookup per object), recomputes the members of the sets a changed pod or namespace
// could be in, rebuilds the chains of changed policies (and of those using a named port whose
// numbers changed) and of the local pods they or a pod change touch. Nothing else walks the
// whole input, so an event costs what it touches plus one lookup per object, not a recompile
// of every policy. Pod sets are named after what they stand for, so new members change no
// chain. The result equals a compile from nothing: Compile is exactly that, and a seeded
// random test compares the two over event sequences.
//
// The cache relies on what informers guarantee: an object in the input is never modified,
// an update is a new object.

// objKey identifies a namespaced object.
type objKey struct{ namespace, name string }

// compareObjKey orders keys by namespace, then name.
func compareObjKey(a, b objKey) int {
	return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
}

// compileCache is what compile keeps between calls. It belongs to one goroutine.
type compileCache struct {
	// gen counts compiles; an entry whose seen is not the current gen was not in the input.
	gen uint32
	// scalars is the last input without its object lists: when it changes (another node
	// name, pod CIDRs, Service ranges ...) every family cache starts over.
	scalars Input
	// byNamespace holds every pod of the last input by namespace and name, accepted or not
	// (ok), as parsed: the pods' only index by key, as policies select by namespace. A
	// namespace without pods has no entry. podsByObj holds the same entries by object, so
	// an unchanged pod costs one pointer lookup; npods counts them.
	byNamespace map[string]map[string]*cachedPod
	podsByObj   map[*corev1.Pod]*cachedPod
	npods       int
	// byAddr indexes the same pods by each of their addresses, and sharedAddr holds the
	// further pods of an address two pods share (briefly, or when a finished pod's address
	// was reused). Keys are the 16-byte forms (the pods' addresses are unmapped, so IPv4
	// and IPv6 keys differ), a third smaller than netip.Addr.
	byAddr     map[[16]byte]*cachedPod
	sharedAddr map[[16]byte][]*cachedPod
	// policies and policiesByObj do the same for policies.
	policies      map[objKey]*cachedPolicy
	policiesByObj map[*networkingv1.NetworkPolicy]*cachedPolicy
	// policiesByNS holds each namespace's parsed policies sorted by name.
	policiesByNS map[string][]*policyInfo
	// problems holds the problems of each policy that has some.
	problems map[objKey][]error
	// namespaces holds the namespace objects of the last input, and nsLabels their label
	// index.
	namespaces map[*corev1.Namespace]uint32
	nsLabels   map[string]map[string]string
	// families holds the per-family caches of the families the last compile programmed.
	families map[corev1.IPFamily]*familyCache
}

// cachedPod is a pod as the last compile parsed it.
type cachedPod struct {
	// info.pod is the pod object, also when ok is false.
	info podInfo
	// ok is newPodInfo's verdict: false for pods no policy can select.
	ok   bool
	seen uint32
}

// cachedPolicy is a policy as the last compile parsed it; info is nil when its podSelector
// does not parse.
type cachedPolicy struct {
	obj  *networkingv1.NetworkPolicy
	info *policyInfo
	seen uint32
}

// newCompileCache returns an empty cache: its first compile computes everything.
func newCompileCache() *compileCache {
	return &compileCache{podsByObj: map[*corev1.Pod]*cachedPod{},
		byNamespace: map[string]map[string]*cachedPod{}, byAddr: map[[16]byte]*cachedPod{}, sharedAddr: map[[16]byte][]*cachedPod{},
		policies: map[objKey]*cachedPolicy{}, policiesByObj: map[*networkingv1.NetworkPolicy]*cachedPolicy{},
		policiesByNS: map[string][]*policyInfo{}, problems: map[objKey][]error{},
		namespaces: map[*corev1.Namespace]uint32{}, families: map[corev1.IPFamily]*familyCache{}}
}

// compile computes the State of in, as Compile does, from what changed since the last call.
func (cc *compileCache) compile(in Input) (State, error) {
	scalars := in
	scalars.Pods, scalars.Namespaces, scalars.Policies = nil, nil, nil
	if !sameScalars(&cc.scalars, &scalars) {
		clear(cc.families)
		cc.scalars = scalars
	}
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
	return st, errors.Join(cc.sortedProblems()...)
}

// sameScalars reports whether two inputs without object lists are equal.
func sameScalars(a, b *Input) bool {
	return a.NodeName == b.NodeName && slices.Equal(a.PodCIDRs, b.PodCIDRs) && slices.Equal(a.ServiceCIDRs, b.ServiceCIDRs) &&
		a.NodePortFirst == b.NodePortFirst && a.NodePortLast == b.NodePortLast &&
		slices.Equal(a.Families, b.Families) && a.DenyICMPEcho == b.DenyICMPEcho
}

// sortedProblems returns every policy problem, policies in namespace and name order.
func (cc *compileCache) sortedProblems() []error {
	if len(cc.problems) == 0 {
		return nil
	}
	var out []error
	for _, k := range slices.SortedFunc(maps.Keys(cc.problems), compareObjKey) {
		out = append(out, cc.problems[k]...)
	}
	return out
}

// newCompiler parses in, reusing the cached parse of every object that did not change, and
// records what did.
func (cc *compileCache) newCompiler(in Input) *compiler {
	c := &compiler{in: in, cc: cc, policyChanges: map[objKey]*policyInfo{}, policyNSChanged: map[string]bool{}}
	cc.gen++
	cc.updateNamespaces(c)
	c.nsLabels, c.byNamespace, c.policiesByNS = cc.nsLabels, cc.byNamespace, cc.policiesByNS
	cc.updatePods(c)
	cc.updatePolicies(c)
	return c
}

// updateNamespaces rebuilds the namespace label index when a namespace object came, went or
// changed, noting whether any namespace's labels changed.
func (cc *compileCache) updateNamespaces(c *compiler) {
	same := len(c.in.Namespaces) == len(cc.namespaces) && cc.nsLabels != nil
	for _, ns := range c.in.Namespaces {
		if _, ok := cc.namespaces[ns]; !ok {
			same = false
			break
		}
	}
	if same {
		return
	}
	clear(cc.namespaces)
	for _, ns := range c.in.Namespaces {
		cc.namespaces[ns] = cc.gen
	}
	labels := indexNamespaceLabels(c.in.Namespaces)
	c.namespacesChanged = !maps.EqualFunc(cc.nsLabels, labels, func(a, b map[string]string) bool { return maps.Equal(a, b) })
	cc.nsLabels = labels
}

// updatePods fills c.podsGone and c.podsCome and makes the cached pods in's.
func (cc *compileCache) updatePods(c *compiler) {
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
	}
	if seen == cc.npods {
		return
	}
	for _, pods := range cc.byNamespace {
		for _, e := range pods {
			if e.seen != cc.gen {
				if e.ok {
					c.podsGone = append(c.podsGone, e.info)
					cc.unindexAddrs(e)
				}
				cc.removePod(e)
				delete(cc.podsByObj, e.info.pod)
			}
		}
	}
}

// pod returns the cached pod of key, nil when there is none.
func (cc *compileCache) pod(key objKey) *cachedPod {
	return cc.byNamespace[key.namespace][key.name]
}

// addPod and removePod put a cached pod in byNamespace and take it out.
func (cc *compileCache) addPod(e *cachedPod) {
	ns := e.info.pod.Namespace
	m := cc.byNamespace[ns]
	if m == nil {
		m = map[string]*cachedPod{}
		cc.byNamespace[ns] = m
	}
	m[e.info.pod.Name] = e
	cc.npods++
}

func (cc *compileCache) removePod(e *cachedPod) {
	ns := e.info.pod.Namespace
	m := cc.byNamespace[ns]
	delete(m, e.info.pod.Name)
	if len(m) == 0 {
		delete(cc.byNamespace, ns)
	}
	cc.npods--
}

// updatePod parses a pod object the cache does not know: a new pod or a new version of one.
func (cc *compileCache) updatePod(c *compiler, pod *corev1.Pod) *cachedPod {
	key := objKey{pod.Namespace, pod.Name}
	info, ok := newPodInfo(pod)
	e := cc.pod(key)
	switch {
	case e == nil:
		e = &cachedPod{info: info}
		cc.addPod(e)
		if ok {
			c.podsCome = append(c.podsCome, info)
		}
	case e.ok == ok && (!ok || samePodInfo(&e.info, &info)):
		// Nothing the rules read changed (a status condition, say), so nothing built from
		// the old version is stale.
		delete(cc.podsByObj, e.info.pod)
		e.info = info
		cc.podsByObj[pod] = e
		return e
	default:
		delete(cc.podsByObj, e.info.pod)
		if e.ok {
			c.podsGone = append(c.podsGone, e.info)
			cc.unindexAddrs(e)
		}
		if ok {
			c.podsCome = append(c.podsCome, info)
		}
	}
	// The entry stays under the same namespace and name: only what they hold changes.
	e.info, e.ok = info, ok
	if ok {
		cc.indexAddrs(e)
	}
	cc.podsByObj[pod] = e
	return e
}

// indexAddrs and unindexAddrs add an accepted pod to byAddr and take it out.
func (cc *compileCache) indexAddrs(e *cachedPod) {
	for _, a := range []netip.Addr{e.info.addr(corev1.IPv4Protocol), e.info.v6} {
		k := a.As16()
		switch {
		case !a.IsValid():
		case cc.byAddr[k] == nil:
			cc.byAddr[k] = e
		default:
			cc.sharedAddr[k] = append(cc.sharedAddr[k], e)
		}
	}
}

func (cc *compileCache) unindexAddrs(e *cachedPod) {
	for _, a := range []netip.Addr{e.info.addr(corev1.IPv4Protocol), e.info.v6} {
		if !a.IsValid() {
			continue
		}
		k := a.As16()
		shared := cc.sharedAddr[k]
		if cc.byAddr[k] == e {
			if len(shared) == 0 {
				delete(cc.byAddr, k)
				continue
			}
			cc.byAddr[k], shared = shared[0], shared[1:]
		} else {
			shared = slices.DeleteFunc(shared, func(p *cachedPod) bool { return p == e })
		}
		if len(shared) == 0 {
			delete(cc.sharedAddr, k)
		} else {
			cc.sharedAddr[k] = shared
		}
	}
}

// entry returns the set entry of address a: a pod's own text of it when that is the
// canonical text (as a.String() renders it), else a new string. The pods keep their
// address strings anyway, so the sets' entries (90,000 at x10) cost no string of their own.
func (cc *compileCache) entry(a netip.Addr) string {
	if p := cc.byAddr[a.As16()]; p != nil {
		var buf [64]byte
		text := a.AppendTo(buf[:0])
		st := &p.info.pod.Status
		for _, ip := range st.PodIPs {
			if ip.IP == string(text) {
				return ip.IP
			}
		}
		if st.PodIP == string(text) {
			return st.PodIP
		}
	}
	return a.String()
}

// podsAt returns the accepted pods with address a.
func (cc *compileCache) podsAt(a netip.Addr) []*cachedPod {
	k := a.As16()
	p := cc.byAddr[k]
	if p == nil {
		return nil
	}
	return append([]*cachedPod{p}, cc.sharedAddr[k]...)
}

// samePodInfo reports whether two parses of a pod give the rules the same inputs.
func samePodInfo(a, b *podInfo) bool {
	return a.v4 == b.v4 && a.hasV4 == b.hasV4 && a.v6 == b.v6 && a.pod.Spec.NodeName == b.pod.Spec.NodeName &&
		maps.Equal(a.pod.Labels, b.pod.Labels) && slices.Equal(a.namedPorts(), b.namedPorts())
}

// updatePolicies makes the cached policies in's, recording in c the policies that changed
// and their namespaces. An unchanged policy keeps its parsed info (the same pointer).
func (cc *compileCache) updatePolicies(c *compiler) {
	seen := 0
	for _, np := range c.in.Policies {
		e := cc.policiesByObj[np]
		if e == nil {
			e = cc.updatePolicy(c, np)
		}
		if e.seen != cc.gen {
			seen++
			e.seen = cc.gen
		}
	}
	if seen != len(cc.policies) {
		maps.DeleteFunc(cc.policies, func(key objKey, e *cachedPolicy) bool {
			if e.seen != cc.gen {
				delete(cc.policiesByObj, e.obj)
				delete(cc.problems, key)
				cc.reindexPolicy(c, key, e.info, nil)
				return true
			}
			return false
		})
	}
}

// reindexPolicy replaces policy key's parse old by new (either may be nil: none) in
// policiesByNS, and records the change in c.
func (cc *compileCache) reindexPolicy(c *compiler, key objKey, old, new *policyInfo) {
	c.policyChanges[key] = new
	c.policyNSChanged[key.namespace] = true
	list := cc.policiesByNS[key.namespace]
	byName := func(p *policyInfo, name string) int { return cmp.Compare(p.name, name) }
	if old != nil {
		if i, found := slices.BinarySearchFunc(list, key.name, byName); found {
			list = slices.Delete(list, i, i+1)
		}
	}
	if new != nil {
		i, _ := slices.BinarySearchFunc(list, key.name, byName)
		list = slices.Insert(list, i, new)
	}
	if len(list) == 0 {
		delete(cc.policiesByNS, key.namespace)
		return
	}
	cc.policiesByNS[key.namespace] = list
}

// updatePolicy parses a policy object the cache does not know: a new policy or a new
// version of one.
func (cc *compileCache) updatePolicy(c *compiler, np *networkingv1.NetworkPolicy) *cachedPolicy {
	key := objKey{np.Namespace, np.Name}
	e := cc.policies[key]
	if e == nil {
		e = &cachedPolicy{}
		cc.policies[key] = e
	} else {
		delete(cc.policiesByObj, e.obj)
	}
	e.obj = np
	old := e.info
	if c.selectors == nil {
		c.selectors, c.rules = selectorCache{}, ruleCache{}
	}
	info, errs := parsePolicyInfo(np, c.selectors, c.rules)
	e.info = info
	if len(errs) > 0 {
		cc.problems[key] = errs
	} else {
		delete(cc.problems, key)
	}
	cc.policiesByObj[np] = e
	cc.reindexPolicy(c, key, old, info)
	return e
}
