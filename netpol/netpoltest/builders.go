package netpoltest

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Policy types, short for the case tables.
const (
	TypeIngress = networkingv1.PolicyTypeIngress
	TypeEgress  = networkingv1.PolicyTypeEgress
)

// Policy builds a NetworkPolicy selecting every pod of ns, without policyTypes or rules (so,
// after defaulting, a deny-all-ingress policy) and applies tweaks.
func Policy(ns, name string, tweaks ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, tweak := range tweaks {
		tweak(np)
	}
	return np
}

// Targets sets the policy's podSelector.
func Targets(sel *metav1.LabelSelector) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PodSelector = *sel }
}

// PolicyTypes sets the policy's policyTypes.
func PolicyTypes(t ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = t }
}

// IngressRules sets the policy's ingress list; with no argument it is an empty, non-nil list.
func IngressRules(rules ...networkingv1.NetworkPolicyIngressRule) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append([]networkingv1.NetworkPolicyIngressRule{}, rules...)
	}
}

// EgressRules sets the policy's egress list; with no argument it is an empty, non-nil list.
func EgressRules(rules ...networkingv1.NetworkPolicyEgressRule) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Egress = append([]networkingv1.NetworkPolicyEgressRule{}, rules...)
	}
}

// From builds an ingress rule; nil peers means from anywhere, no ports means all ports.
func From(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports}
}

// To builds an egress rule; nil peers means to anywhere, no ports means all ports.
func To(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports}
}

// Peers lists peers for From and To.
func Peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

// LabelsSel builds a matchLabels selector from pairs k1, v1, ...; with no pairs it is {}.
func LabelsSel(kv ...string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	for i := 0; i+1 < len(kv); i += 2 {
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[kv[i]] = kv[i+1]
	}
	return sel
}

// ExprSel builds a selector with one matchExpressions requirement.
func ExprSel(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

// PodPeer is a peer with only a podSelector.
func PodPeer(sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: sel}
}

// NSPeer is a peer with only a namespaceSelector.
func NSPeer(sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: sel}
}

// PodNSPeer is a peer with both selectors (AND).
func PodNSPeer(pods, namespaces *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: pods, NamespaceSelector: namespaces}
}

// CIDRPeer is an ipBlock peer.
func CIDRPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

// Port is a numeric port without protocol (TCP by default).
func Port(n int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(n)
	return networkingv1.NetworkPolicyPort{Port: &p}
}

// ProtoPort is a numeric port with a protocol.
func ProtoPort(proto corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
	p := Port(n)
	p.Protocol = &proto
	return p
}

// ProtoOnly is a port entry with a protocol and no port: every port of that protocol.
func ProtoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// PortRange is a port entry from lo to hi inclusive (endPort).
func PortRange(proto corev1.Protocol, lo, hi int32) networkingv1.NetworkPolicyPort {
	p := ProtoPort(proto, lo)
	p.EndPort = &hi
	return p
}

// NamedPort is a named port without protocol (TCP by default).
func NamedPort(name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Port: &p}
}

// ProtoNamedPort is a named port with a protocol.
func ProtoNamedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	p := NamedPort(name)
	p.Protocol = &proto
	return p
}
