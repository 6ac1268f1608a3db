package reference

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// parsedPolicy is a NetworkPolicy with its selectors and CIDRs parsed, for one evaluation.
type parsedPolicy struct {
	ref types.NamespacedName
	// podSelector picks the policy's targets inside ref.Namespace.
	podSelector labels.Selector
	// isolatesIngress and isolatesEgress are the effective policyTypes.
	isolatesIngress, isolatesEgress bool
	ingress, egress                 []parsedRule
}

// parsedRule is one ingress or egress rule.
type parsedRule struct {
	// anyPeer is set when the rule's from/to list is empty.
	anyPeer bool
	peers   []parsedPeer
	// ports is the rule's ports list, validated; empty means every port and protocol.
	ports []networkingv1.NetworkPolicyPort
}

// parsedPeer is one NetworkPolicyPeer: either an ipBlock or selectors.
type parsedPeer struct {
	// podSelector and namespaceSelector are nil when the peer leaves the field unset,
	// which is not the same as an empty selector.
	podSelector, namespaceSelector labels.Selector
	block                          *parsedIPBlock
}

// effectivePolicyTypes returns which directions a policy isolates.
//
// API (NetworkPolicySpec.policyTypes): "If this field is not specified, it will default based
// on the existence of ingress or egress rules; policies that contain an egress section are
// assumed to affect egress, and all policies (whether or not they contain an ingress section)
// are assumed to affect ingress." The API server defaults it when the list is empty: Ingress,
// plus Egress iff len(spec.egress) != 0, so `egress: []` without policyTypes does not isolate
// egress. Objects that skipped the API server get the same defaulting here.
func effectivePolicyTypes(spec *networkingv1.NetworkPolicySpec) (ingress, egress bool) {
	if len(spec.PolicyTypes) == 0 {
		return true, len(spec.Egress) != 0
	}
	return slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeIngress),
		slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// parsePolicy validates the parts of np the evaluator reads and parses them.
func parsePolicy(np *networkingv1.NetworkPolicy) (parsedPolicy, error) {
	p := parsedPolicy{ref: types.NamespacedName{Namespace: np.Namespace, Name: np.Name}}
	fail := func(err error) (parsedPolicy, error) {
		return parsedPolicy{}, fmt.Errorf("%w %s: %w", ErrInvalidPolicy, p.ref, err)
	}
	var err error
	// API (spec.podSelector): "An empty selector matches all pods in the policy's namespace."
	if p.podSelector, err = parseSelector("spec.podSelector", &np.Spec.PodSelector); err != nil {
		return fail(err)
	}
	p.isolatesIngress, p.isolatesEgress = effectivePolicyTypes(&np.Spec)
	// API (spec.ingress / spec.egress): "If this field is empty then this NetworkPolicy does
	// not allow any traffic". nil and [] are the same after an API round trip, so
	// both leave the rule list empty: an isolated direction with no rules denies everything.
	for i, r := range np.Spec.Ingress {
		rule, err := parseRule(fmt.Sprintf("spec.ingress[%d]", i), "from", r.From, r.Ports)
		if err != nil {
			return fail(err)
		}
		p.ingress = append(p.ingress, rule)
	}
	for i, r := range np.Spec.Egress {
		rule, err := parseRule(fmt.Sprintf("spec.egress[%d]", i), "to", r.To, r.Ports)
		if err != nil {
			return fail(err)
		}
		p.egress = append(p.egress, rule)
	}
	return p, nil
}

// parseRule parses the peers (field peerField) of the rule at path and validates its ports.
func parseRule(path, peerField string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (parsedRule, error) {
	// API (ingress.from): "If this field is empty or missing, this rule matches all sources
	// (traffic not restricted by source)." Same for egress.to and destinations.
	rule := parsedRule{anyPeer: len(peers) == 0, ports: ports}
	for j := range peers {
		peer, err := parsePeer(fmt.Sprintf("%s.%s[%d]", path, peerField, j), &peers[j])
		if err != nil {
			return parsedRule{}, err
		}
		rule.peers = append(rule.peers, peer)
	}
	for j := range ports {
		if err := validatePort(fmt.Sprintf("%s.ports[%d]", path, j), &ports[j]); err != nil {
			return parsedRule{}, err
		}
	}
	return rule, nil
}

// parsePeer parses one NetworkPolicyPeer. The API rejects a peer that sets no field and one
// that sets ipBlock together with a selector; the evaluator refuses both rather than guess.
func parsePeer(path string, peer *networkingv1.NetworkPolicyPeer) (parsedPeer, error) {
	hasSelector := peer.PodSelector != nil || peer.NamespaceSelector != nil
	switch {
	case peer.IPBlock != nil && hasSelector:
		return parsedPeer{}, fmt.Errorf("%s: ipBlock may not be combined with a selector", path)
	case peer.IPBlock != nil:
		block, err := parseIPBlock(path+".ipBlock", peer.IPBlock)
		return parsedPeer{block: block}, err
	case !hasSelector:
		return parsedPeer{}, fmt.Errorf("%s: a peer must set podSelector, namespaceSelector or ipBlock", path)
	}
	var out parsedPeer
	var err error
	if peer.PodSelector != nil {
		if out.podSelector, err = parseSelector(path+".podSelector", peer.PodSelector); err != nil {
			return parsedPeer{}, err
		}
	}
	if peer.NamespaceSelector != nil {
		if out.namespaceSelector, err = parseSelector(path+".namespaceSelector", peer.NamespaceSelector); err != nil {
			return parsedPeer{}, err
		}
	}
	return out, nil
}

// parseSelector turns a non-nil label selector into a labels.Selector; an empty selector
// matches everything.
func parseSelector(path string, sel *metav1.LabelSelector) (labels.Selector, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// selects reports whether the policy targets pod: same namespace and podSelector matches.
// Only pods policies can select reach here.
func (p *parsedPolicy) selects(pod *corev1.Pod) bool {
	return pod.Namespace == p.ref.Namespace && p.podSelector.Matches(labels.Set(pod.Labels))
}

// namespaceLabels maps a namespace's name to the labels namespaceSelectors see on it.
type namespaceLabels map[string]labels.Set

// newNamespaceLabels indexes the namespaces' labels. The API server sets
// kubernetes.io/metadata.name to the namespace's name on every namespace (and keeps it so), so
// the label is added here when a test object lacks it; a namespace missing from the input gets
// only that label. The input objects are not modified.
func newNamespaceLabels(namespaces []*corev1.Namespace) namespaceLabels {
	idx := make(namespaceLabels, len(namespaces))
	for _, ns := range namespaces {
		set := make(labels.Set, len(ns.Labels)+1)
		for k, v := range ns.Labels {
			set[k] = v
		}
		set[corev1.LabelMetadataName] = ns.Name
		idx[ns.Name] = set
	}
	return idx
}

// of returns the labels of namespace name.
func (idx namespaceLabels) of(name string) labels.Set {
	if set, ok := idx[name]; ok {
		return set
	}
	return labels.Set{corev1.LabelMetadataName: name}
}

// matches reports whether the remote end of a connection is this peer, for a policy in
// namespace policyNS.
//
// API (NetworkPolicyPeer): "podSelector is a label selector which selects pods. ... If
// namespaceSelector is also set, then the NetworkPolicyPeer as a whole selects the pods
// matching podSelector in the Namespaces selected by NamespaceSelector. Otherwise it selects
// the pods matching podSelector in the policy's own namespace." "namespaceSelector selects
// namespaces using cluster-scoped labels. ... If podSelector is also set, then the
// NetworkPolicyPeer as a whole selects the pods matching podSelector in the namespaces
// selected by namespaceSelector. Otherwise it selects all pods in the namespaces selected by
// namespaceSelector." Selectors match only pods policies can select; an ipBlock matches by
// address alone, pod or not.
func (peer *parsedPeer) matches(remote resolvedEndpoint, policyNS string, nsLabels namespaceLabels) bool {
	if peer.block != nil {
		return peer.block.contains(remote.ip)
	}
	pod := remote.selectable()
	if pod == nil {
		return false
	}
	if peer.namespaceSelector == nil {
		if pod.Namespace != policyNS {
			return false
		}
	} else if !peer.namespaceSelector.Matches(nsLabels.of(pod.Namespace)) {
		return false
	}
	return peer.podSelector == nil || peer.podSelector.Matches(labels.Set(pod.Labels))
}
