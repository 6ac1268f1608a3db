package netpol

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Set types we create.
const (
	setTypeIP  = "hash:ip"
	setTypeNet = "hash:net"
)

// familyCompiler builds one family's chains, from its cache where no change touched them.
type familyCompiler struct {
	*compiler
	fam   corev1.IPFamily
	cache *familyCache
	// changedNamed holds the "name/PROTO" named ports whose port numbers changed in this
	// compile: the chains using them have one rule per number and are rebuilt. (Set members
	// change without the chains changing: sets are named after what they stand for.)
	changedNamed map[string]bool
	// touchedNamed holds the numbers of each "name/PROTO" whose pods changed, with the
	// addresses of those pods.
	touchedNamed map[string]map[int32][]netip.Addr
	// changedSets holds the sets whose members changed in this compile; setsAddedOrGone is
	// set when a set came or went, chainsChanged when any chain changed.
	changedSets                    map[string]bool
	setsAddedOrGone, chainsChanged bool
	// sets collects the ipBlock sets of the policy being compiled, peerKeys and namedKeys
	// the peer sets and named ports its chains use.
	sets                setCollector
	peerKeys, namedKeys []string
	// blockSetOf holds the ipBlock set of each rule (shared by the policies repeating the
	// rule list) this compile rendered.
	blockSetOf map[*ruleInfo]IPSet
	// scratch, scratchRules, scratchPeers and scratchPorts are reused while building rules,
	// so what is kept is allocated at its size and nothing else is.
	scratch                                  []byte
	scratchRules, scratchPeers, scratchPorts []string
	// scratchAddrs gathers a peer set's addresses.
	scratchAddrs []netip.Addr
	// rules holds each policy rule built in this compile once: policies share peer sets
	// and ports (a thousand policies allow DNS alike), so their chains share the strings.
	rules map[string]string
}

// internBytes returns the string equal to b this compile built first, making it from b
// when there is none.
func (fc *familyCompiler) internBytes(b []byte) string {
	if s, ok := fc.rules[string(b)]; ok {
		return s
	}
	s := string(b)
	fc.rules[s] = s
	return s
}

// localPod is a local pod programmed in this family.
type localPod struct {
	info *podInfo
	addr netip.Addr
	// ingress and egress are the policy chains whose policies select the pod.
	ingress, egress []string
}

// newFamilyCompiler returns the compiler of family fam over cache.
func newFamilyCompiler(c *compiler, fam corev1.IPFamily, cache *familyCache) *familyCompiler {
	return &familyCompiler{compiler: c, fam: fam, cache: cache,
		changedNamed: map[string]bool{}, touchedNamed: map[string]map[int32][]netip.Addr{}, rules: map[string]string{},
		blockSetOf: map[*ruleInfo]IPSet{}, sets: setCollector{}}
}

// setCollector gathers the sets of one family by name.
type setCollector map[string]IPSet

// addrEntries sorts and dedups addresses (netip order: 10.0.0.9 before 10.0.0.10) and
// renders them as set entries.
func (fc *familyCompiler) addrEntries(addrs []netip.Addr) []string {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return fc.sortedAddrEntries(addrs)
}

// sortedAddrEntries renders sorted addresses as set entries, without duplicates.
func (fc *familyCompiler) sortedAddrEntries(addrs []netip.Addr) []string {
	n := 0
	for i, a := range addrs {
		if i == 0 || addrs[i-1] != a {
			n++
		}
	}
	out := make([]string, 0, n)
	for i, a := range addrs {
		if i == 0 || addrs[i-1] != a {
			out = append(out, fc.cc.entry(a))
		}
	}
	return out
}

// localPod returns a local pod with an address of this family and the policy chains that
// select it. It runs after every policy's entry is up to date.
func (fc *familyCompiler) localPod(p *podInfo) localPod {
	lp := localPod{info: p, addr: p.addr(fc.fam)}
	set := labels.Set(p.pod.Labels)
	for _, pol := range fc.policiesByNS[p.pod.Namespace] {
		if !pol.selector.Matches(set) {
			continue
		}
		e := fc.cache.policies[objKey{pol.namespace, pol.name}]
		if pol.isolatesIngress {
			lp.ingress = append(lp.ingress, e.chain(dirIngress))
		}
		if pol.isolatesEgress {
			lp.egress = append(lp.egress, e.chain(dirEgress))
		}
	}
	return lp
}

// compilePolicy builds a policy's entry: one chain per direction the policy isolates, and
// what they reference. Policy chains exist for every policy, selecting a local pod or not,
// so a pod that arrives only changes jumps.
func (fc *familyCompiler) compilePolicy(p *policyInfo) *policyEntry {
	// Every list the entry keeps is made at its size once its length is known: lists
	// grown by append leave garbage among what the cache keeps, and spare capacity.
	e := &policyEntry{info: p}
	clear(fc.sets)
	fc.peerKeys, fc.namedKeys = fc.peerKeys[:0], fc.namedKeys[:0]
	var chains [2]Chain
	n := 0
	if p.isolatesIngress {
		chains[n] = Chain{Name: policyChainName(fc.fam, p.namespace, p.name, dirIngress), Rules: fc.directionRules(p, p.ingress, "src", srcSetPrefix)}
		n++
	}
	if p.isolatesEgress {
		chains[n] = Chain{Name: policyChainName(fc.fam, p.namespace, p.name, dirEgress), Rules: fc.directionRules(p, p.egress, "dst", dstSetPrefix)}
		n++
	}
	if n > 0 {
		e.chains = slices.Clone(chains[:n])
	}
	e.peerKeys, e.namedKeys = clonedOrNil(fc.peerKeys), clonedOrNil(fc.namedKeys)
	nsets := len(fc.sets) + len(e.peerKeys)
	for _, k := range e.namedKeys {
		nsets += len(fc.cache.namedSets[k])
	}
	if nsets > 0 {
		e.sets = make([]*setRef, 0, nsets)
	}
	// A set counted already is referenced as it is: policies repeat their ipBlocks, peers
	// and named ports, and share the reference and an ipBlock set's entries. The others
	// are allocated here, and only those.
	use := func(name string, src setRef) {
		r := fc.cache.sets[name]
		if r == nil {
			r = new(setRef)
			*r = src
			r.name = name
		}
		e.sets = append(e.sets, r)
	}
	for name, set := range fc.sets {
		if fc.cache.sets[name] == nil {
			block := new(IPSet)
			*block = set
			use(name, setRef{block: block})
		} else {
			use(name, setRef{})
		}
	}
	for _, k := range e.peerKeys {
		ps := fc.cache.peerSets[k]
		use(ps.set.Name, setRef{peer: ps})
	}
	for _, k := range e.namedKeys {
		for n, s := range fc.cache.namedSets[k] {
			use(s.Name, setRef{namedKey: k, num: n})
		}
	}
	return e
}

// clonedOrNil returns a copy of list at its length, nil when it is empty.
func clonedOrNil(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return slices.Clone(list)
}

// nflogDenied is the target part of kube-router's log rule for denied packets: NFLOG group
// 100 at most 10 packets a minute per pod chain. It is written as iptables-save prints it,
// so a rule read back compares equal.
const nflogDenied = "-m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100"

// podGroupChain builds the chain one direction of a group of local pods goes through
// (kube-router's pod chain, in its rule order): shared conntrack rules, node traffic for
// ingress, then either the default mark (direction not isolated) or the jumps to the selecting
// policies' chains, log and reject when nothing marked, and the "passed" mark. A chain is
// entered for one direction only (its set is matched on the destination for ingress, the
// source for egress), so traffic between two pods of one group is judged by the receiver's
// ingress and the sender's egress, each on its own pass. Its rules match no set: one chain per
// group that told the directions apart by set matches on its rules took 2.5 s to restore at
// 10×, chains per direction 1.85 s.
func podGroupChain(g podGroupKey) Chain {
	rules := make([]string, 0, 6+max(len(g.policyChains), 1))
	rules = append(rules, "-j "+ChainCommon)
	if g.direction == dirIngress {
		// API (spec.ingress) and kube-router: traffic from the pod's own node (kubelet
		// probes) is always allowed.
		rules = append(rules, "-m addrtype --src-type LOCAL -j ACCEPT")
	}
	if len(g.policyChains) == 0 {
		rules = append(rules, "-j "+ChainDefault)
	}
	for _, ch := range g.policyChains {
		rules = append(rules, "-j "+ch)
	}
	rules = append(rules,
		// Logged before the reject, as kube-router does, so `tcpdump -i nflog:100` shows what
		// policies deny; the limit keeps a flood from costing more than the reject.
		"-m mark ! --mark "+markMatched+" "+nflogDenied,
		"-m mark ! --mark "+markMatched+" -j REJECT",
		"-j MARK --set-xmark 0x0/0x10000",
		"-j MARK --set-xmark "+markAccepted,
	)
	return Chain{Name: g.chain, Rules: rules}
}

// podGroupKey is one direction of a group of local pods: the policy chains that select them,
// the group's chain and the set of their addresses.
type podGroupKey struct {
	direction    string
	policyChains []string
	chain, set   string
}

// podGroupKeyOf returns the group of policy chains policyChains in direction dir.
func (fc *familyCompiler) podGroupKeyOf(dir string, policyChains []string) podGroupKey {
	chain := podGroupChainName(fc.fam, dir, policyChains)
	return podGroupKey{direction: dir, policyChains: policyChains, chain: chain, set: podGroupSetName(fc.fam, dir, chain)}
}

// topLevelChains builds KUBE-ROUTER-INPUT/FORWARD/OUTPUT: each sends traffic to a local pod
// through its ingress group's chain and traffic from one through its egress group's chain
// (groups sorted by chain name), then ends in the tail chain. INPUT sees only what pods send
// to the node. FORWARD sees routed traffic and, with br_netfilter, bridged traffic too, so the
// physdev copies of kube-router's jumps are not needed.
func (fc *familyCompiler) topLevelChains(groups []podGroupKey) []Chain {
	var input []string
	for _, cidr := range fc.in.ServiceCIDRs {
		if cidr.Addr().Is6() == (fc.fam == corev1.IPv6Protocol) {
			input = append(input, "-d "+cidr.Masked().String()+" -m comment --comment \"allow traffic to cluster IP range\" -j RETURN")
		}
	}
	if fc.in.NodePortFirst != 0 && fc.in.NodePortLast >= fc.in.NodePortFirst {
		ports := strconv.Itoa(int(fc.in.NodePortFirst)) + ":" + strconv.Itoa(int(fc.in.NodePortLast))
		for _, proto := range []string{"tcp", "udp", "sctp"} {
			input = append(input, "-p "+proto+" -m addrtype --dst-type LOCAL -m multiport --dports "+ports+
				" -m comment --comment \"allow LOCAL "+strings.ToUpper(proto)+" traffic to node ports\" -j RETURN")
		}
	}
	var forward, output []string
	for _, g := range groups {
		side := "src"
		if g.direction == dirIngress {
			side = "dst"
		}
		jump := "-m set --match-set " + g.set + " " + side + " -j " + g.chain
		if g.direction == dirEgress {
			input = append(input, jump)
		}
		forward = append(forward, jump)
		output = append(output, jump)
	}
	tail := "-j " + ChainTail
	return []Chain{
		{Name: ChainInput, Rules: append(input, tail)},
		{Name: ChainForward, Rules: append(forward, tail)},
		{Name: ChainOutput, Rules: append(output, tail)},
	}
}

// commonChain holds what every pod chain accepts first, kube-router's KUBE-NWPLCY-COMMON in
// its order: invalid packets dropped, replies of allowed connections accepted, then the ICMP
// kube-router accepts whatever the policies say. Echo requests keep ping usable for
// diagnosing an isolated pod, unless Input.DenyICMPEcho; destination unreachable (path MTU
// discovery included) and time exceeded may belong to no tracked connection; IPv6 also needs
// neighbour discovery, IPv6's ARP, and kube-router accepts its echo replies too.
func (fc *familyCompiler) commonChain() Chain {
	rules := []string{
		"-m conntrack --ctstate INVALID -j DROP",
		"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
	}
	match := "-p icmp -m icmp --icmp-type "
	types := []string{"echo-request", "destination-unreachable", "time-exceeded"}
	if fc.fam == corev1.IPv6Protocol {
		match = "-p ipv6-icmp -m icmp6 --icmpv6-type "
		types = append(types, "neighbour-solicitation", "neighbour-advertisement", "echo-reply")
	}
	for _, t := range types {
		if fc.in.DenyICMPEcho && (t == "echo-request" || t == "echo-reply") {
			continue
		}
		rules = append(rules, match+t+" -j ACCEPT")
	}
	return Chain{Name: ChainCommon, Rules: rules}
}

// tailChain ends every top-level chain (kube-router's KUBE-NWPLCY-TAIL with default deny): an
// address of the node's pod CIDRs that is not a local pod programmed in this state is
// rejected, so a pod that starts before its chain exists is isolated instead of open
// (k3s-io/k3s#13432); then traffic every pod chain passed is accepted, which also works when
// FORWARD's policy is DROP (kube-router#984).
//
// The node's own addresses inside a pod CIDR (the cni0 gateway) are not pods and are exempt
// (addrtype LOCAL), or pod-to-node traffic there would be rejected. The set of programmed
// local pods plays kube-router's kube-router-local-pods; it is marked AddLast, so an address
// joins it only after its pod chain is live.
func (fc *familyCompiler) tailChain() Chain {
	var rules []string
	var cidrs []string
	for _, c := range fc.in.PodCIDRs {
		if c.Addr().Is6() == (fc.fam == corev1.IPv6Protocol) {
			cidrs = append(cidrs, c.Masked().String())
		}
	}
	if len(cidrs) > 0 {
		set := ProgrammedPodsSet(fc.fam)
		for _, c := range cidrs {
			rules = append(rules,
				"-s "+c+" -m addrtype ! --src-type LOCAL -m set ! --match-set "+set+" src -m comment --comment \"reject unprogrammed local pod\" -j REJECT",
				"-d "+c+" -m addrtype ! --dst-type LOCAL -m set ! --match-set "+set+" dst -m comment --comment \"reject unprogrammed local pod\" -j REJECT",
			)
		}
	}
	rules = append(rules, "-m mark --mark "+markAccepted+" -m comment --comment \"accept netpol-ok\" -j ACCEPT")
	return Chain{Name: ChainTail, Rules: rules}
}

// ProgrammedPodsSet names the ipset that holds, in family fam, the address of every local pod
// whose rules are in place (kube-router's kube-router-local-pods): `ipset test` on it tells
// whether a pod is programmed yet, and its number of entries how many are.
func ProgrammedPodsSet(fam corev1.IPFamily) string {
	return identitySetName(dstSetPrefix, fam, setTypeIP, "local-pods")
}
