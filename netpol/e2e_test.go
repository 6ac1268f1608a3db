package netpol

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// upstreamCase is one step of an upstream e2e NetworkPolicy test (spec §4.1, numbers in the
// names) on the full 3×3 model: the objects as they are at that step and the whole matrix one
// probe must give. A test that changes objects between probes is one case per step.
type upstreamCase struct {
	name      string
	nsTweaks  map[string][]func(*corev1.Namespace)
	podTweaks map[string][]func(*corev1.Pod)
	policies  []*networkingv1.NetworkPolicy
	probe     Probe
	// families to run; nil means IPv4 and IPv6.
	families []corev1.IPFamily
	want     *expectation
	// tcpWant is set for an SCTP probe: the matrix TCP on the same port must give under the
	// same policies. A policy allowing only SCTP must not open TCP (#38, #39), and a kernel
	// without SCTP sockets can check these cells with real packets where it cannot probe SCTP.
	tcpWant *expectation
}

// runFamilies returns the address families the case runs in.
func (c upstreamCase) runFamilies() []corev1.IPFamily {
	if c.families == nil {
		return []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}
	return c.families
}

// upstreamE2ECases returns the upstream e2e list, shared by the evaluator table test and the
// dataplane test that replays it with real packets.
func upstreamE2ECases() []upstreamCase {
	var (
		tcp80  = Probe{Port: 80}
		tcp81  = Probe{Port: 81}
		udp80  = Probe{Protocol: corev1.ProtocolUDP, Port: 80}
		udp81  = Probe{Protocol: corev1.ProtocolUDP, Port: 81}
		sctp80 = Probe{Protocol: corev1.ProtocolSCTP, Port: 80}
		sctp81 = Probe{Protocol: corev1.ProtocolSCTP, Port: 81}

		podA   = labelsSel("pod", "a")
		podB   = labelsSel("pod", "b")
		nsX    = labelsSel("ns", "x")
		nsY    = labelsSel("ns", "y")
		notInX = exprSel("ns", metav1.LabelSelectorOpNotIn, "x")

		denyIngress = makePolicy("x", "deny-ingress", ingressRules())
		denyAll     = makePolicy("x", "deny-all", policyTypes(typeIngress, typeEgress))
		aFromY81    = makePolicy("x", "allow-81-from-y", targets(podA), ingressRules(from(peers(nsPeer(nsY)), port(81))))
		aFromY80    = makePolicy("x", "allow-80-from-y", targets(podA), ingressRules(from(peers(nsPeer(nsY)), port(80))))
		aFromYa     = makePolicy("x", "allow-from-y-a", targets(podA), ingressRules(from(peers(podNSPeer(podA, nsY)))))
		aIngress80  = makePolicy("x", "allow-80", targets(podA), ingressRules(from(nil, port(80))))
		aEgress80   = makePolicy("x", "allow-egress-80", targets(podA), policyTypes(typeEgress), egressRules(to(nil, port(80))))
		aAllEgress  = makePolicy("x", "allow-all-egress", targets(podA), policyTypes(typeEgress), egressRules(to(nil)))
		yaFromXa    = makePolicy("y", "allow-from-xa-to-ya", targets(podA), ingressRules(from(peers(podNSPeer(podA, nsX)))))
		ybFromXa    = makePolicy("y", "allow-from-xa-to-yb", targets(podB), ingressRules(from(peers(podNSPeer(podA, nsX)))))
		xaToYa      = makePolicy("x", "allow-to-ya", targets(podA), policyTypes(typeEgress), egressRules(to(peers(podNSPeer(podA, nsY)))))
		aFromUpdNS  = makePolicy("x", "allow-from-updated-ns", targets(podA), ingressRules(from(peers(nsPeer(labelsSel("ns2", "updated"))))))
		aFromUpdPod = makePolicy("x", "allow-from-updated-pod", targets(podA), ingressRules(from(peers(podPeer(labelsSel("pod", "b", "pod2", "updated"))))))
		isolatedPod = makePolicy("x", "deny-isolated", targets(labelsSel("target", "isolated")), policyTypes(typeIngress))

		v4 = []corev1.IPFamily{corev1.IPv4Protocol}
		v6 = []corev1.IPFamily{corev1.IPv6Protocol}
	)
	return []upstreamCase{
		{
			name:     "#1 a default-deny-ingress policy denies every connection into its namespace",
			policies: []*networkingv1.NetworkPolicy{denyIngress},
			probe:    tcp80,
			want:     expectAll().ingress("x/*", false),
		},
		{
			name:     "#2 a default-deny-all policy denies every connection into and out of its namespace",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			probe:    tcp80,
			want:     expectAll().ingress("x/*", false).egress("x/*", false),
		},
		{
			name: "#3 a podSelector peer admits only the selected pod of the server's namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "x-a-from-x-b", targets(podA),
				ingressRules(from(peers(podPeer(podB)))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("x/b", "x/a", true),
		},
		{
			name: "#4 an allow-all-pods policy for one target reopens it under a namespace deny",
			policies: []*networkingv1.NetworkPolicy{denyIngress, makePolicy("x", "allow-all-to-a", targets(podA),
				ingressRules(from(peers(podNSPeer(labelsSel(), labelsSel())))))},
			probe: tcp80,
			want:  expectAll().ingress("x/*", false).ingress("x/a", true),
		},
		{
			name: "#5 an empty namespaceSelector admits pods of all namespaces",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-all-ns", targets(podA),
				ingressRules(from(peers(nsPeer(labelsSel())))))},
			probe: tcp80,
			want:  expectAll(),
		},
		{
			name: "#6 a namespaceSelector admits only pods of the selected namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-from-y", targets(podA),
				ingressRules(from(peers(nsPeer(nsY)))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name: "#7 a podSelector with matchExpressions In admits the listed pods",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-in-b", targets(podA),
				ingressRules(from(peers(podPeer(exprSel("pod", metav1.LabelSelectorOpIn, "b"))))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("x/b", "x/a", true),
		},
		{
			name: "#8 a namespaceSelector with matchExpressions In admits the listed namespaces",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-in-y", targets(podA),
				ingressRules(from(peers(nsPeer(exprSel("ns", metav1.LabelSelectorOpIn, "y"))))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name: "#9 a podSelector peer and a namespaceSelector peer are OR-ed",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-or", targets(podA),
				ingressRules(from(peers(nsPeer(notInX), podPeer(podB)))))},
			probe: tcp80,
			want:  expectAll().set("x/*", "x/a", false).set("x/b", "x/a", true),
		},
		{
			name: "#10 podSelector and namespaceSelector in one peer are AND-ed",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-and", targets(podA),
				ingressRules(from(peers(podNSPeer(podB, notInX)))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("y/b", "x/a", true).set("z/b", "x/a", true),
		},
		{
			name: "#11 AND-ed selectors with matchExpressions on both sides admit their product",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-and-multi", targets(podA),
				ingressRules(from(peers(podNSPeer(exprSel("pod", metav1.LabelSelectorOpIn, "b", "c"), notInX)))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("[yz]/[bc]", "x/a", true),
		},
		{
			name: "#12 two podSelector peers admit either pod",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-b-or-c", targets(podA),
				ingressRules(from(peers(podPeer(podB), podPeer(labelsSel("pod", "c"))))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("x/[bc]", "x/a", true),
		},
		{
			name:     "#13 a pod-and-namespace peer admits only that pod of the other namespace",
			policies: []*networkingv1.NetworkPolicy{aFromYa},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false).set("y/a", "x/a", true),
		},
		{
			name:     "#14 a rule on port 81 admits the namespace on 81",
			policies: []*networkingv1.NetworkPolicy{aFromY81},
			probe:    tcp81,
			want:     expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name:     "#14 a rule on port 81 admits nothing on port 80",
			policies: []*networkingv1.NetworkPolicy{aFromY81},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false),
		},
		{
			name:     "#15 stacked policies: a port 81 policy alone keeps port 80 closed",
			policies: []*networkingv1.NetworkPolicy{aFromY81},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false),
		},
		{
			name:     "#15 stacked policies: adding a port 80 policy on the same pods opens port 80",
			policies: []*networkingv1.NetworkPolicy{aFromY81, aFromY80},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name:     "#15 stacked policies: port 81 stays open after adding the port 80 policy",
			policies: []*networkingv1.NetworkPolicy{aFromY81, aFromY80},
			probe:    tcp81,
			want:     expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name:     "#16 an allow-all policy allows port 80",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-all", ingressRules(from(nil)))},
			probe:    tcp80,
			want:     expectAll(),
		},
		{
			name:     "#16 an allow-all policy allows port 81",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-all", ingressRules(from(nil)))},
			probe:    tcp81,
			want:     expectAll(),
		},
		{
			name:     "#17 an ingress named port without protocol opens its TCP port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-81-named", ingressRules(from(nil, namedPort("serve-81-tcp"))))},
			probe:    tcp81,
			want:     expectAll(),
		},
		{
			name:     "#17 an ingress named port leaves the other port closed",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-81-named", ingressRules(from(nil, namedPort("serve-81-tcp"))))},
			probe:    tcp80,
			want:     expectAll().ingress("x/*", false),
		},
		{
			name: "#18 a named port from a namespace opens that port for that namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-80-named-from-y", targets(podA),
				ingressRules(from(peers(nsPeer(nsY)), namedPort("serve-80-tcp"))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name: "#18 a named port from a namespace keeps the other port closed to all",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-80-named-from-y", targets(podA),
				ingressRules(from(peers(nsPeer(nsY)), namedPort("serve-80-tcp"))))},
			probe: tcp81,
			want:  expectAll().ingress("x/a", false),
		},
		{
			name: "#19 an egress named port resolves on every destination and opens it",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-egress-named", policyTypes(typeEgress),
				egressRules(to(nil, namedPort("serve-80-tcp"))))},
			probe: tcp80,
			want:  expectAll(),
		},
		{
			name: "#19 an egress named port keeps other ports closed",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-egress-named", policyTypes(typeEgress),
				egressRules(to(nil, namedPort("serve-80-tcp"))))},
			probe: tcp81,
			want:  expectAll().egress("x/*", false),
		},
		{
			name:     "#20 updated policy, before: allow-all ingress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-all-mutate-to-deny-all", ingressRules(from(nil)))},
			probe:    tcp81,
			want:     expectAll(),
		},
		{
			name:     "#20 updated policy, after: the same policy with an empty ingress list denies all",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-all-mutate-to-deny-all", ingressRules())},
			probe:    tcp81,
			want:     expectAll().ingress("x/*", false),
		},
		{
			name:     "#21 updated namespace, before: no namespace carries the selected label",
			policies: []*networkingv1.NetworkPolicy{aFromUpdNS},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false),
		},
		{
			name:     "#21 updated namespace, after: labelling y admits its pods",
			nsTweaks: map[string][]func(*corev1.Namespace){"y": {withNamespaceLabels("ns2", "updated")}},
			policies: []*networkingv1.NetworkPolicy{aFromUpdNS},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name:     "#22 updated pod, before: no pod carries both selected labels",
			policies: []*networkingv1.NetworkPolicy{aFromUpdPod},
			probe:    tcp80,
			want:     expectAll().ingress("x/a", false),
		},
		{
			name:      "#22 updated pod, after: relabelling x/b admits it",
			podTweaks: map[string][]func(*corev1.Pod){"x/b": {withLabels("pod2", "updated")}},
			policies:  []*networkingv1.NetworkPolicy{aFromUpdPod},
			probe:     tcp80,
			want:      expectAll().ingress("x/a", false).set("x/b", "x/a", true),
		},
		{
			name: "#23 an empty podSelector peer admits only the policy's own namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny-other-ns",
				ingressRules(from(peers(podPeer(labelsSel())))))},
			probe: tcp80,
			want:  expectAll().set("[yz]/*", "x/*", false),
		},
		{
			name:     "#24 updated target, before: no pod carries the target label",
			policies: []*networkingv1.NetworkPolicy{isolatedPod},
			probe:    tcp80,
			want:     expectAll(),
		},
		{
			name:      "#24 updated target, after: relabelling x/a isolates it",
			podTweaks: map[string][]func(*corev1.Pod){"x/a": {withLabels("target", "isolated")}},
			policies:  []*networkingv1.NetworkPolicy{isolatedPod},
			probe:     tcp80,
			want:      expectAll().ingress("x/a", false),
		},
		{
			name:     "#25 an egress policy without rules denies all egress of the selected pod",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny-egress-a", targets(podA), policyTypes(typeEgress))},
			probe:    tcp80,
			want:     expectAll().egress("x/a", false),
		},
		{
			name:     "#26 an egress policy without rules for all pods denies all egress of the namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny-egress", policyTypes(typeEgress))},
			probe:    tcp80,
			want:     expectAll().egress("x/*", false),
		},
		{
			name: "#27 ingress and egress together: port 80 allowed out, ingress only from x/b",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "both", targets(podA), policyTypes(typeIngress, typeEgress),
				ingressRules(from(peers(podPeer(podB)))), egressRules(to(nil, port(80))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("x/b", "x/a", true),
		},
		{
			name: "#27 ingress and egress together: port 81 denied out, ingress still from x/b",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "both", targets(podA), policyTypes(typeIngress, typeEgress),
				ingressRules(from(peers(podPeer(podB)))), egressRules(to(nil, port(80))))},
			probe: tcp81,
			want:  expectAll().ingress("x/a", false).set("x/b", "x/a", true).egress("x/a", false),
		},
		{
			name:     "#28 client-side egress denies what the server's ingress allows",
			policies: []*networkingv1.NetworkPolicy{xaToYa, yaFromXa, ybFromXa},
			probe:    tcp80,
			want:     expectAll().egress("x/a", false).ingress("y/[ab]", false).set("x/a", "y/a", true),
		},
		{
			name:     "#29 an egress pod-and-namespace peer allows only that server",
			policies: []*networkingv1.NetworkPolicy{xaToYa},
			probe:    tcp80,
			want:     expectAll().egress("x/a", false).set("x/a", "y/a", true),
		},
		{
			name: "#30 a protocol-only port allows every port of that protocol",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-tcp", targets(podA),
				ingressRules(from(nil, protoOnly(corev1.ProtocolTCP))))},
			probe: tcp81,
			want:  expectAll(),
		},
		{
			name: "#30 a protocol-only port keeps the other protocols closed",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-tcp", targets(podA),
				ingressRules(from(nil, protoOnly(corev1.ProtocolTCP))))},
			probe: udp80,
			want:  expectAll().ingress("x/a", false),
		},
		{
			name:     "#31 stacked ingress, before: a port 80 policy closes port 81",
			policies: []*networkingv1.NetworkPolicy{aIngress80},
			probe:    tcp81,
			want:     expectAll().ingress("x/a", false),
		},
		{
			name: "#31 stacked ingress, after: an added allow-all ingress policy takes precedence",
			policies: []*networkingv1.NetworkPolicy{aIngress80, makePolicy("x", "allow-all-to-a", targets(podA),
				ingressRules(from(nil)))},
			probe: tcp81,
			want:  expectAll(),
		},
		{
			name:     "#32 stacked egress, before: a port 80 egress policy closes port 81",
			policies: []*networkingv1.NetworkPolicy{aEgress80},
			probe:    tcp81,
			want:     expectAll().egress("x/a", false),
		},
		{
			name:     "#32 stacked egress, after: an added allow-all egress policy takes precedence",
			policies: []*networkingv1.NetworkPolicy{aEgress80, aAllEgress},
			probe:    tcp81,
			want:     expectAll(),
		},
		{
			name:     "#33 deleted policies, before: deny-all in both directions",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			probe:    tcp80,
			want:     expectAll().ingress("x/*", false).egress("x/*", false),
		},
		{
			name:  "#33 deleted policies, after: nothing is enforced",
			probe: tcp80,
			want:  expectAll(),
		},
		{
			name: "#34 an egress ipBlock of one pod's IPv4 address allows only that pod",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-cidr", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("10.0.2.2/32")))))},
			probe:    tcp80,
			families: v4,
			want:     expectAll().egress("x/a", false).set("x/a", "y/b", true),
		},
		{
			name: "#34 an egress ipBlock of one pod's IPv6 address allows only that pod",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-cidr", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("fd00::2:2/128")))))},
			probe:    tcp80,
			families: v6,
			want:     expectAll().egress("x/a", false).set("x/a", "y/b", true),
		},
		{
			name: "#35 an IPv4 ipBlock except removes one pod from the allowed block",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-cidr-except", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("10.0.0.0/16", "10.0.1.2/32")))))},
			probe:    tcp80,
			families: v4,
			want:     expectAll().set("x/a", "x/b", false),
		},
		{
			name: "#35 an IPv6 ipBlock except removes one pod from the allowed block",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-cidr-except", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("fd00::/64", "fd00::1:2/128")))))},
			probe:    tcp80,
			families: v6,
			want:     expectAll().set("x/a", "x/b", false),
		},
		{
			name: "#36 updating the IPv4 policy to the excepted address alone allows only it",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-cidr-except", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("10.0.1.2/32")))))},
			probe:    tcp80,
			families: v4,
			want:     expectAll().egress("x/a", false).set("x/a", "x/b", true),
		},
		{
			name: "#36 updating the IPv6 policy to the excepted address alone allows only it",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-cidr-except", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("fd00::1:2/128")))))},
			probe:    tcp80,
			families: v6,
			want:     expectAll().egress("x/a", false).set("x/a", "x/b", true),
		},
		{
			name:     "#37 independent directions, before: allow-all egress changes nothing",
			policies: []*networkingv1.NetworkPolicy{aAllEgress},
			probe:    tcp80,
			want:     expectAll(),
		},
		{
			name: "#37 independent directions, after: adding a deny ingress closes only ingress",
			policies: []*networkingv1.NetworkPolicy{aAllEgress, makePolicy("x", "deny-ingress-a", targets(podA),
				policyTypes(typeIngress))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false),
		},
		{
			name: "#38 an SCTP allow is not a TCP allow",
			policies: []*networkingv1.NetworkPolicy{denyIngress, makePolicy("x", "allow-sctp-81", targets(podA),
				ingressRules(from(nil, protoPort(corev1.ProtocolSCTP, 81))))},
			probe: tcp81,
			want:  expectAll().ingress("x/*", false),
		},
		{
			name: "#38 the SCTP allow opens SCTP to its target only",
			policies: []*networkingv1.NetworkPolicy{denyIngress, makePolicy("x", "allow-sctp-81", targets(podA),
				ingressRules(from(nil, protoPort(corev1.ProtocolSCTP, 81))))},
			probe:   sctp81,
			want:    expectAll().ingress("x/[bc]", false),
			tcpWant: expectAll().ingress("x/*", false),
		},
		{
			name: "#39 a policy allowing only SCTP isolates its target for TCP",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-sctp-80", targets(podA),
				ingressRules(from(nil, protoPort(corev1.ProtocolSCTP, 80))))},
			probe: tcp81,
			want:  expectAll().ingress("x/a", false),
		},
		{
			name: "#39 the SCTP-only policy allows its SCTP port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-sctp-80", targets(podA),
				ingressRules(from(nil, protoPort(corev1.ProtocolSCTP, 80))))},
			probe:   sctp80,
			want:    expectAll(),
			tcpWant: expectAll().ingress("x/a", false),
		},
		{
			name: "#40 a policy allowing only UDP denies TCP on the same port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-udp-81", targets(podA),
				ingressRules(from(nil, protoPort(corev1.ProtocolUDP, 81))))},
			probe: tcp81,
			want:  expectAll().ingress("x/a", false),
		},
		{
			name: "#40 the UDP-only policy allows UDP on its port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-udp-81", targets(podA),
				ingressRules(from(nil, protoPort(corev1.ProtocolUDP, 81))))},
			probe: udp81,
			want:  expectAll(),
		},
		{
			name: "#41 matchLabels on the default namespace name label selects that namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-from-y-by-name", targets(podA),
				ingressRules(from(peers(nsPeer(labelsSel(corev1.LabelMetadataName, "y"))))))},
			probe: tcp80,
			want:  expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name: "#42 matchExpressions NotIn on the default namespace name label excludes that namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "deny-to-y-by-name", targets(podA), policyTypes(typeEgress),
				egressRules(to(peers(nsPeer(exprSel(corev1.LabelMetadataName, metav1.LabelSelectorOpNotIn, "y"))))))},
			probe: tcp80,
			want:  expectAll().set("x/a", "y/*", false),
		},
		{
			name:     "U1 a default-deny-ingress policy denies UDP",
			policies: []*networkingv1.NetworkPolicy{denyIngress},
			probe:    udp80,
			want:     expectAll().ingress("x/*", false),
		},
		{
			name: "U2 a UDP port rule admits the namespace on that UDP port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-udp-81-from-y", targets(podA),
				ingressRules(from(peers(nsPeer(nsY)), protoPort(corev1.ProtocolUDP, 81))))},
			probe: udp81,
			want:  expectAll().ingress("x/a", false).set("y/*", "x/a", true),
		},
		{
			name:     "U3 a pod-and-namespace peer admits only that pod over UDP",
			policies: []*networkingv1.NetworkPolicy{aFromYa},
			probe:    udp80,
			want:     expectAll().ingress("x/a", false).set("y/a", "x/a", true),
		},
		{
			name:     "S1 a default-deny-ingress policy denies SCTP",
			policies: []*networkingv1.NetworkPolicy{denyIngress},
			probe:    sctp80,
			want:     expectAll().ingress("x/*", false),
			tcpWant:  expectAll().ingress("x/*", false),
		},
		{
			name: "S2 an SCTP port rule admits the namespace on that SCTP port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-sctp-81-from-y", targets(podA),
				ingressRules(from(peers(nsPeer(nsY)), protoPort(corev1.ProtocolSCTP, 81))))},
			probe:   sctp81,
			want:    expectAll().ingress("x/a", false).set("y/*", "x/a", true),
			tcpWant: expectAll().ingress("x/a", false),
		},
		{
			name:     "S3 a pod-and-namespace peer admits only that pod over SCTP",
			policies: []*networkingv1.NetworkPolicy{aFromYa},
			probe:    sctp80,
			want:     expectAll().ingress("x/a", false).set("y/a", "x/a", true),
			tcpWant:  expectAll().ingress("x/a", false).set("y/a", "x/a", true),
		},
	}
}

// TestEvaluateUpstreamE2E replays the upstream e2e NetworkPolicy tests on their full 3×3 model
// and asserts the whole reachability matrix of each, in both address families.
func TestEvaluateUpstreamE2E(t *testing.T) {
	for _, tt := range upstreamE2ECases() {
		for _, family := range tt.runFamilies() {
			t.Run(tt.name+" ("+string(family)+")", func(t *testing.T) {
				m := newModel(tt.nsTweaks, tt.podTweaks)
				probe := tt.probe
				probe.Family = family
				got, err := Reachability(m.cluster(tt.policies...), m.endpoints(), probe)
				require.NoError(t, err)
				assertMatrix(t, tt.want.matrix(probe), got)
				if tt.tcpWant != nil {
					probe.Protocol = corev1.ProtocolTCP
					got, err := Reachability(m.cluster(tt.policies...), m.endpoints(), probe)
					require.NoError(t, err)
					assertMatrix(t, tt.tcpWant.matrix(probe), got)
				}
			})
		}
	}
}
