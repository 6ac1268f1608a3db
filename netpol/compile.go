package netpol

// This file is the compiler's entry point: from the API objects one node sees, it computes
// the dataplane state that node must program, per IP family, as plain data (State). It is
// pure (no clients, listers, clock or kernel) and shares no code with the reference
// evaluator in evaluate*.go, so the real-packet tests compare two independent readings of
// the API.

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Input is everything Compile reads. Compile never modifies it.
type Input struct {
	// NodeName is the node being programmed; its local pods are the pods whose spec.nodeName
	// it is.
	NodeName string
	// PodCIDRs are all of the node's spec.podCIDRs (several with multi-cluster CIDR). Traffic
	// from or to an address in them that is not a programmed local pod is rejected (kube-router
	// --netpol-default-deny, spec §1.3 KUBE-NWPLCY-TAIL); with none, there is no default deny.
	PodCIDRs []netip.Prefix
	// ServiceCIDRs are the cluster's Service ranges: pod traffic to them that reaches INPUT is
	// not judged there, as the real check happens on the backend after DNAT (spec §1.3).
	ServiceCIDRs []netip.Prefix
	// NodePortFirst and NodePortLast bound the NodePort range exempted on INPUT the same way;
	// zero leaves the exemption out. K3s uses 30000-32767.
	NodePortFirst, NodePortLast uint16
	// Families are the IP families to program, IPv4 first when both. Empty means the families
	// of PodCIDRs, or IPv4 alone when there are none.
	Families []corev1.IPFamily
	// Pods are every pod of the cluster: peers may run on any node (spec §1.6).
	Pods []*corev1.Pod
	// Namespaces are every namespace, for namespaceSelectors.
	Namespaces []*corev1.Namespace
	// Policies are every NetworkPolicy of the cluster.
	Policies []*networkingv1.NetworkPolicy
}

// State is the desired dataplane of one node: one Ruleset per IP family.
type State struct {
	// Rulesets holds one entry per family, IPv4 first.
	Rulesets []Ruleset
}

// Ruleset is the filter-table chains and the ipsets of one IP family.
type Ruleset struct {
	// Family is IPv4 or IPv6.
	Family corev1.IPFamily
	// Chains are every chain we own in this family's filter table, in render order: the
	// top-level chains, the shared chains, then policy and pod chains sorted by name.
	Chains []Chain
	// Sets are the ipsets the chains reference, sorted by name.
	Sets []IPSet
}

// Chain is one filter-table chain and its rules, each in iptables-restore syntax without the
// leading "-A CHAIN".
type Chain struct {
	// Name is the chain's name, at most 28 characters.
	Name string
	// Rules are the chain's rules in order.
	Rules []string
}

// IPSet is one ipset. Its name is derived from its type, family and entries (setName), so
// the same name always holds the same entries.
type IPSet struct {
	// Name is the set's name, at most 31 characters, "inet6:"-prefixed for IPv6.
	Name string
	// Type is hash:ip or hash:net.
	Type   string
	Family corev1.IPFamily
	// Entries are addresses (hash:ip) or prefixes (hash:net), sorted by address.
	Entries []string
}

// Compile computes the dataplane state of in.NodeName. A policy part the API server would
// reject (an unparsable selector or CIDR, a peer with no field, a bad port) is left out and
// reported in the returned error, which joins every such problem with ErrInvalidPolicy; the
// State is usable even then and fails closed: the rest of the policy still isolates its
// targets. Only a policy whose own podSelector cannot be parsed selects nothing.
func Compile(in Input) (State, error) {
	c := newCompiler(in)
	families := in.Families
	if len(families) == 0 {
		families = familiesOf(in.PodCIDRs)
	}
	var st State
	for _, fam := range families {
		st.Rulesets = append(st.Rulesets, c.compileFamily(fam))
	}
	return st, errors.Join(c.problems...)
}

// familiesOf lists the families of prefixes, IPv4 first; IPv4 alone when there are none.
func familiesOf(prefixes []netip.Prefix) []corev1.IPFamily {
	var v4, v6 bool
	for _, p := range prefixes {
		v4, v6 = v4 || p.Addr().Is4(), v6 || !p.Addr().Is4()
	}
	switch {
	case v4 && v6:
		return []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	case v6:
		return []corev1.IPFamily{corev1.IPv6Protocol}
	default:
		return []corev1.IPFamily{corev1.IPv4Protocol}
	}
}

// compiler holds what Compile parses once for every family.
type compiler struct {
	in       Input
	nsLabels map[string]map[string]string
	pods     []podInfo
	// byNamespace indexes pods by namespace name.
	byNamespace map[string][]int
	policies    []policyInfo
	problems    []error
}

// newCompiler parses in: pods, namespaces and policies.
func newCompiler(in Input) *compiler {
	c := &compiler{in: in, nsLabels: indexNamespaceLabels(in.Namespaces), byNamespace: map[string][]int{}}
	for _, pod := range in.Pods {
		if info, ok := newPodInfo(pod); ok {
			c.byNamespace[pod.Namespace] = append(c.byNamespace[pod.Namespace], len(c.pods))
			c.pods = append(c.pods, info)
		}
	}
	for _, np := range in.Policies {
		p, errs := parsePolicyInfo(np)
		c.problems = append(c.problems, errs...)
		if p != nil {
			c.policies = append(c.policies, *p)
		}
	}
	slices.SortFunc(c.policies, func(a, b policyInfo) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
	})
	return c
}

// compileFamily computes one family's ruleset.
func (c *compiler) compileFamily(fam corev1.IPFamily) Ruleset {
	fc := newFamilyCompiler(c, fam)
	var policyChains []Chain
	for i := range c.policies {
		policyChains = append(policyChains, fc.policyChains(&c.policies[i])...)
	}
	local := fc.localPods()
	var podChains []Chain
	for _, lp := range local {
		podChains = append(podChains, fc.podChain(lp))
	}
	slices.SortFunc(policyChains, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(podChains, func(a, b Chain) int { return cmp.Compare(a.Name, b.Name) })

	rs := Ruleset{Family: fam}
	rs.Chains = append(rs.Chains, fc.topLevelChains(local)...)
	rs.Chains = append(rs.Chains, fc.commonChain(), Chain{Name: ChainDefault, Rules: []string{"-j MARK --set-xmark " + markMatched}}, fc.tailChain(local))
	rs.Chains = append(rs.Chains, policyChains...)
	rs.Chains = append(rs.Chains, podChains...)
	rs.Sets = fc.sets.sorted()
	return rs
}
