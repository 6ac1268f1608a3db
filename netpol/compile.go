package netpol

// This file is the compiler's entry point: from the API objects one node sees, it computes
// the dataplane state that node must program, per IP family, as plain data (State). It is
// pure (no clients, listers, clock or kernel) and shares no code with the reference
// evaluator in evaluate*.go, so the real-packet tests compare two independent readings of
// the API.

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Input is everything Compile reads. Compile never modifies it.
type Input struct {
	// NodeName is the node being programmed; its local pods are the pods whose spec.nodeName
	// it is.
	NodeName string
	// PodCIDRs are all of the node's spec.podCIDRs (several with multi-cluster CIDR). Traffic
	// from or to an address in them that is not a programmed local pod is rejected (kube-router
	// --netpol-default-deny, its KUBE-NWPLCY-TAIL); with none, there is no default deny.
	PodCIDRs []netip.Prefix
	// ServiceCIDRs are the cluster's Service ranges: pod traffic to them that reaches INPUT is
	// not judged there, as the real check happens on the backend after DNAT.
	ServiceCIDRs []netip.Prefix
	// NodePortFirst and NodePortLast bound the NodePort range exempted on INPUT the same way;
	// zero leaves the exemption out. K3s uses 30000-32767.
	NodePortFirst, NodePortLast uint16
	// Families are the IP families to program, IPv4 first when both. Empty means the families
	// of PodCIDRs, or IPv4 alone when there are none.
	Families []corev1.IPFamily
	// Pods are every pod of the cluster: peers may run on any node.
	Pods []*corev1.Pod
	// Namespaces are every namespace, for namespaceSelectors.
	Namespaces []*corev1.Namespace
	// Policies are every NetworkPolicy of the cluster.
	Policies []*networkingv1.NetworkPolicy
	// DenyICMPEcho leaves ICMP echo (pings, and IPv6 echo replies) of isolated pods to the
	// policies, which cannot allow ICMP, instead of accepting it as kube-router does.
	DenyICMPEcho bool
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

// IPSet is one ipset. A hash:net set of ipBlocks is named by its content (setName), so its
// name always holds the same entries; a hash:ip set of pod addresses is named by what it
// stands for (identitySetName) and its entries change in place as pods come and go.
type IPSet struct {
	// Name is the set's name, at most 31 characters, "inet6:"-prefixed for IPv6.
	Name string
	// Type is hash:ip or hash:net.
	Type   string
	Family corev1.IPFamily
	// Entries are addresses (hash:ip) or prefixes (hash:net), sorted by address.
	Entries []string
	// AddLast marks the set of programmed local pods, which the tail chain lets through: an
	// address may only join it once the pod's chain and jumps are in place, so Apply adds
	// its new entries after the iptables-restore, not before.
	AddLast bool
	// DeleteLast marks the sets of pod groups: an address leaves the group it was in only
	// after the restore that brings its new group's chain in place, so a pod whose policies
	// change is judged by the old group, then by both, never by neither.
	DeleteLast bool
}

// Compile computes the dataplane state of in.NodeName. A policy part the API server would
// reject (an unparsable selector or CIDR, a peer with no field, a bad port) is left out and
// reported in the returned error, which joins every such problem with ErrInvalidPolicy; the
// State is usable even then and fails closed: the rest of the policy still isolates its
// targets. Only a policy whose own podSelector cannot be parsed selects nothing. A policy
// whose ipBlocks need more than maxPolicyBlockEntries set entries is refused with
// ErrPolicyTooLarge: it keeps isolating its targets but none of its rules admit anything.
//
// Compile starts from nothing every time; the controller keeps a compileCache instead, whose
// compile gives the same State while recomputing only what changed since its last call.
func Compile(in Input) (State, error) {
	return newCompileCache().compile(in)
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

// compiler holds what one compile parsed for every family, and what changed since the
// previous compile of the same cache.
type compiler struct {
	in Input
	// cc is the cache the compile reads its indexes from and updates.
	cc       *compileCache
	nsLabels map[string]map[string]string
	// byNamespace holds the pods by namespace and name; only those whose ok is set can be
	// selected.
	byNamespace map[string]map[string]*cachedPod
	// policiesByNS holds each namespace's policies sorted by name.
	policiesByNS map[string][]*policyInfo
	// podsGone and podsCome hold the old and the new versions of the pods that changed in a
	// way the rules can see (added, removed, relabelled, readdressed, ...) since the
	// previous compile of the cache.
	podsGone, podsCome []podInfo
	// namespacesChanged is set when any namespace's labels changed, or one came or went.
	namespacesChanged bool
	// policyChanges maps each policy that came, changed or went to its new parse (nil when
	// gone or unparsable), and policyNSChanged holds their namespaces.
	policyChanges   map[objKey]*policyInfo
	policyNSChanged map[string]bool
	// selectors and rules hold the selectors and rule lists this compile parsed, so the
	// policies share them.
	selectors selectorCache
	rules     ruleCache
}

// changedPods returns the old and new versions of the changed pods.
func (c *compiler) changedPods() []podInfo {
	return append(slices.Clip(c.podsGone), c.podsCome...)
}

// nsLabelsOf returns the labels a namespaceSelector matches for namespace ns. A namespace
// with pods but no Namespace object (not yet in the cache) carries only its name label.
func (c *compiler) nsLabelsOf(ns string) labels.Set {
	if l, ok := c.nsLabels[ns]; ok {
		return l
	}
	return labels.Set{corev1.LabelMetadataName: ns}
}
