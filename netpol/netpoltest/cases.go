package netpoltest

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Case is one step of an upstream e2e NetworkPolicy test (the test's number starts the name)
// on the full 3×3 model: the objects as they are at that step and the whole matrix one probe
// must give. A test that changes objects between probes is one case per step.
type Case struct {
	// Name starts with the number of the upstream test the case is a step of ("#20", "U1").
	Name string
	// NamespaceTweaks and PodTweaks change the model's namespaces ("x") and pods ("x/a")
	// at this step.
	NamespaceTweaks map[string][]func(*corev1.Namespace)
	PodTweaks       map[string][]func(*corev1.Pod)
	// Policies are every NetworkPolicy in force at this step.
	Policies []*networkingv1.NetworkPolicy
	// Protocol (empty means TCP) and Port are the probe's.
	Protocol corev1.Protocol
	Port     int32
	// Families to run; nil means IPv4 and IPv6.
	Families []corev1.IPFamily
	// Want is the whole matrix the probe must give.
	Want *Expectation
	// TCPWant is set for an SCTP probe: the matrix TCP on the same port must give under the
	// same policies. A policy allowing only SCTP must not open TCP, and a kernel without SCTP
	// sockets can check these cells with real packets where it cannot probe SCTP.
	TCPWant *Expectation
	// Continues says the case is a later step of the test of the case before it: it starts
	// from that case's objects and policies (updated in place, as upstream does), not from a
	// cluster without policies. Tests that apply each case as a whole state may ignore it.
	Continues bool
}

// RunFamilies returns the address families the case runs in.
func (c Case) RunFamilies() []corev1.IPFamily {
	if c.Families == nil {
		return []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}
	return c.Families
}

// UpstreamE2E returns the upstream e2e list (test/e2e/network/netpol, numbered as upstream's
// tests are; U and S are the UDP and SCTP variants of #1, #14 and #13). addrs places the pods
// for the ipBlock cases (#34 to #36), which are left out for a family addrs has no range or
// pod address of.
func UpstreamE2E(addrs Addresses) []Case {
	var (
		podA   = LabelsSel("pod", "a")
		podB   = LabelsSel("pod", "b")
		nsX    = LabelsSel("ns", "x")
		nsY    = LabelsSel("ns", "y")
		notInX = ExprSel("ns", metav1.LabelSelectorOpNotIn, "x")

		denyIngress = Policy("x", "deny-ingress", IngressRules())
		denyAll     = Policy("x", "deny-all", PolicyTypes(TypeIngress, TypeEgress))
		aFromY81    = Policy("x", "allow-81-from-y", Targets(podA), IngressRules(From(Peers(NSPeer(nsY)), Port(81))))
		aFromY80    = Policy("x", "allow-80-from-y", Targets(podA), IngressRules(From(Peers(NSPeer(nsY)), Port(80))))
		aFromYa     = Policy("x", "allow-from-y-a", Targets(podA), IngressRules(From(Peers(PodNSPeer(podA, nsY)))))
		aIngress80  = Policy("x", "allow-80", Targets(podA), IngressRules(From(nil, Port(80))))
		aEgress80   = Policy("x", "allow-egress-80", Targets(podA), PolicyTypes(TypeEgress), EgressRules(To(nil, Port(80))))
		aAllEgress  = Policy("x", "allow-all-egress", Targets(podA), PolicyTypes(TypeEgress), EgressRules(To(nil)))
		yaFromXa    = Policy("y", "allow-from-xa-to-ya", Targets(podA), IngressRules(From(Peers(PodNSPeer(podA, nsX)))))
		ybFromXa    = Policy("y", "allow-from-xa-to-yb", Targets(podB), IngressRules(From(Peers(PodNSPeer(podA, nsX)))))
		xaToYa      = Policy("x", "allow-to-ya", Targets(podA), PolicyTypes(TypeEgress), EgressRules(To(Peers(PodNSPeer(podA, nsY)))))
		aFromUpdNS  = Policy("x", "allow-from-updated-ns", Targets(podA), IngressRules(From(Peers(NSPeer(LabelsSel("ns2", "updated"))))))
		aFromUpdPod = Policy("x", "allow-from-updated-pod", Targets(podA), IngressRules(From(Peers(PodPeer(LabelsSel("pod", "b", "pod2", "updated"))))))
		isolatedPod = Policy("x", "deny-isolated", Targets(LabelsSel("target", "isolated")), PolicyTypes(TypeIngress))
	)
	cases := []Case{
		{
			Name:     "#1 a default-deny-ingress policy denies every connection into its namespace",
			Policies: []*networkingv1.NetworkPolicy{denyIngress},
			Port:     80,
			Want:     ExpectAll().Ingress("x/*", false),
		},
		{
			Name:     "#2 a default-deny-all policy denies every connection into and out of its namespace",
			Policies: []*networkingv1.NetworkPolicy{denyAll},
			Port:     80,
			Want:     ExpectAll().Ingress("x/*", false).Egress("x/*", false),
		},
		{
			Name: "#3 a podSelector peer admits only the selected pod of the server's namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "x-a-from-x-b", Targets(podA),
				IngressRules(From(Peers(PodPeer(podB)))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("x/b", "x/a", true),
		},
		{
			Name: "#4 an allow-all-pods policy for one target reopens it under a namespace deny",
			Policies: []*networkingv1.NetworkPolicy{denyIngress, Policy("x", "allow-all-to-a", Targets(podA),
				IngressRules(From(Peers(PodNSPeer(LabelsSel(), LabelsSel())))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/*", false).Ingress("x/a", true),
		},
		{
			Name: "#5 an empty namespaceSelector admits pods of all namespaces",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-all-ns", Targets(podA),
				IngressRules(From(Peers(NSPeer(LabelsSel())))))},
			Port: 80,
			Want: ExpectAll(),
		},
		{
			Name: "#6 a namespaceSelector admits only pods of the selected namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-from-y", Targets(podA),
				IngressRules(From(Peers(NSPeer(nsY)))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name: "#7 a podSelector with matchExpressions In admits the listed pods",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-in-b", Targets(podA),
				IngressRules(From(Peers(PodPeer(ExprSel("pod", metav1.LabelSelectorOpIn, "b"))))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("x/b", "x/a", true),
		},
		{
			Name: "#8 a namespaceSelector with matchExpressions In admits the listed namespaces",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-in-y", Targets(podA),
				IngressRules(From(Peers(NSPeer(ExprSel("ns", metav1.LabelSelectorOpIn, "y"))))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name: "#9 a podSelector peer and a namespaceSelector peer are OR-ed",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-or", Targets(podA),
				IngressRules(From(Peers(NSPeer(notInX), PodPeer(podB)))))},
			Port: 80,
			Want: ExpectAll().Set("x/*", "x/a", false).Set("x/b", "x/a", true),
		},
		{
			Name: "#10 podSelector and namespaceSelector in one peer are AND-ed",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-and", Targets(podA),
				IngressRules(From(Peers(PodNSPeer(podB, notInX)))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("y/b", "x/a", true).Set("z/b", "x/a", true),
		},
		{
			Name: "#11 AND-ed selectors with matchExpressions on both sides admit their product",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-and-multi", Targets(podA),
				IngressRules(From(Peers(PodNSPeer(ExprSel("pod", metav1.LabelSelectorOpIn, "b", "c"), notInX)))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("[yz]/[bc]", "x/a", true),
		},
		{
			Name: "#12 two podSelector peers admit either pod",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-b-or-c", Targets(podA),
				IngressRules(From(Peers(PodPeer(podB), PodPeer(LabelsSel("pod", "c"))))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("x/[bc]", "x/a", true),
		},
		{
			Name:     "#13 a pod-and-namespace peer admits only that pod of the other namespace",
			Policies: []*networkingv1.NetworkPolicy{aFromYa},
			Port:     80,
			Want:     ExpectAll().Ingress("x/a", false).Set("y/a", "x/a", true),
		},
		{
			Name:     "#14 a rule on port 81 admits the namespace on 81",
			Policies: []*networkingv1.NetworkPolicy{aFromY81},
			Port:     81,
			Want:     ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:      "#14 a rule on port 81 admits nothing on port 80",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aFromY81},
			Port:      80,
			Want:      ExpectAll().Ingress("x/a", false),
		},
		{
			Name:     "#15 stacked policies: a port 81 policy alone keeps port 80 closed",
			Policies: []*networkingv1.NetworkPolicy{aFromY81},
			Port:     80,
			Want:     ExpectAll().Ingress("x/a", false),
		},
		{
			Name:      "#15 stacked policies: adding a port 80 policy on the same pods opens port 80",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aFromY81, aFromY80},
			Port:      80,
			Want:      ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:      "#15 stacked policies: port 81 stays open after adding the port 80 policy",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aFromY81, aFromY80},
			Port:      81,
			Want:      ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:     "#16 an allow-all policy allows port 80",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-all", IngressRules(From(nil)))},
			Port:     80,
			Want:     ExpectAll(),
		},
		{
			Name:      "#16 an allow-all policy allows port 81",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{Policy("x", "allow-all", IngressRules(From(nil)))},
			Port:      81,
			Want:      ExpectAll(),
		},
		{
			Name:     "#17 an ingress named port without protocol opens its TCP port",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-81-named", IngressRules(From(nil, NamedPort("serve-81-tcp"))))},
			Port:     81,
			Want:     ExpectAll(),
		},
		{
			Name:      "#17 an ingress named port leaves the other port closed",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{Policy("x", "allow-81-named", IngressRules(From(nil, NamedPort("serve-81-tcp"))))},
			Port:      80,
			Want:      ExpectAll().Ingress("x/*", false),
		},
		{
			Name: "#18 a named port from a namespace opens that port for that namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-80-named-from-y", Targets(podA),
				IngressRules(From(Peers(NSPeer(nsY)), NamedPort("serve-80-tcp"))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:      "#18 a named port from a namespace keeps the other port closed to all",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-80-named-from-y", Targets(podA),
				IngressRules(From(Peers(NSPeer(nsY)), NamedPort("serve-80-tcp"))))},
			Port: 81,
			Want: ExpectAll().Ingress("x/a", false),
		},
		{
			Name: "#19 an egress named port resolves on every destination and opens it",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-egress-named", PolicyTypes(TypeEgress),
				EgressRules(To(nil, NamedPort("serve-80-tcp"))))},
			Port: 80,
			Want: ExpectAll(),
		},
		{
			Name:      "#19 an egress named port keeps other ports closed",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-egress-named", PolicyTypes(TypeEgress),
				EgressRules(To(nil, NamedPort("serve-80-tcp"))))},
			Port: 81,
			Want: ExpectAll().Egress("x/*", false),
		},
		{
			Name:     "#20 updated policy, before: allow-all ingress",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-all-mutate-to-deny-all", IngressRules(From(nil)))},
			Port:     81,
			Want:     ExpectAll(),
		},
		{
			Name:      "#20 updated policy, after: the same policy with an empty ingress list denies all",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{Policy("x", "allow-all-mutate-to-deny-all", IngressRules())},
			Port:      81,
			Want:      ExpectAll().Ingress("x/*", false),
		},
		{
			Name:     "#21 updated namespace, before: no namespace carries the selected label",
			Policies: []*networkingv1.NetworkPolicy{aFromUpdNS},
			Port:     80,
			Want:     ExpectAll().Ingress("x/a", false),
		},
		{
			Name:            "#21 updated namespace, after: labelling y admits its pods",
			Continues:       true,
			NamespaceTweaks: map[string][]func(*corev1.Namespace){"y": {WithNamespaceLabels("ns2", "updated")}},
			Policies:        []*networkingv1.NetworkPolicy{aFromUpdNS},
			Port:            80,
			Want:            ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:     "#22 updated pod, before: no pod carries both selected labels",
			Policies: []*networkingv1.NetworkPolicy{aFromUpdPod},
			Port:     80,
			Want:     ExpectAll().Ingress("x/a", false),
		},
		{
			Name:      "#22 updated pod, after: relabelling x/b admits it",
			Continues: true,
			PodTweaks: map[string][]func(*corev1.Pod){"x/b": {WithLabels("pod2", "updated")}},
			Policies:  []*networkingv1.NetworkPolicy{aFromUpdPod},
			Port:      80,
			Want:      ExpectAll().Ingress("x/a", false).Set("x/b", "x/a", true),
		},
		{
			Name: "#23 an empty podSelector peer admits only the policy's own namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "deny-other-ns",
				IngressRules(From(Peers(PodPeer(LabelsSel())))))},
			Port: 80,
			Want: ExpectAll().Set("[yz]/*", "x/*", false),
		},
		{
			Name:     "#24 updated target, before: no pod carries the target label",
			Policies: []*networkingv1.NetworkPolicy{isolatedPod},
			Port:     80,
			Want:     ExpectAll(),
		},
		{
			Name:      "#24 updated target, after: relabelling x/a isolates it",
			Continues: true,
			PodTweaks: map[string][]func(*corev1.Pod){"x/a": {WithLabels("target", "isolated")}},
			Policies:  []*networkingv1.NetworkPolicy{isolatedPod},
			Port:      80,
			Want:      ExpectAll().Ingress("x/a", false),
		},
		{
			Name:     "#25 an egress policy without rules denies all egress of the selected pod",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "deny-egress-a", Targets(podA), PolicyTypes(TypeEgress))},
			Port:     80,
			Want:     ExpectAll().Egress("x/a", false),
		},
		{
			Name:     "#26 an egress policy without rules for all pods denies all egress of the namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "deny-egress", PolicyTypes(TypeEgress))},
			Port:     80,
			Want:     ExpectAll().Egress("x/*", false),
		},
		{
			Name: "#27 ingress and egress together: port 80 allowed out, ingress only from x/b",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "both", Targets(podA), PolicyTypes(TypeIngress, TypeEgress),
				IngressRules(From(Peers(PodPeer(podB)))), EgressRules(To(nil, Port(80))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("x/b", "x/a", true),
		},
		{
			Name:      "#27 ingress and egress together: port 81 denied out, ingress still from x/b",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "both", Targets(podA), PolicyTypes(TypeIngress, TypeEgress),
				IngressRules(From(Peers(PodPeer(podB)))), EgressRules(To(nil, Port(80))))},
			Port: 81,
			Want: ExpectAll().Ingress("x/a", false).Set("x/b", "x/a", true).Egress("x/a", false),
		},
		{
			Name:     "#28 client-side egress denies what the server's ingress allows",
			Policies: []*networkingv1.NetworkPolicy{xaToYa, yaFromXa, ybFromXa},
			Port:     80,
			Want:     ExpectAll().Egress("x/a", false).Ingress("y/[ab]", false).Set("x/a", "y/a", true),
		},
		{
			Name:     "#29 an egress pod-and-namespace peer allows only that server",
			Policies: []*networkingv1.NetworkPolicy{xaToYa},
			Port:     80,
			Want:     ExpectAll().Egress("x/a", false).Set("x/a", "y/a", true),
		},
		{
			Name: "#30 a protocol-only port allows every port of that protocol",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-tcp", Targets(podA),
				IngressRules(From(nil, ProtoOnly(corev1.ProtocolTCP))))},
			Port: 81,
			Want: ExpectAll(),
		},
		{
			Name:      "#30 a protocol-only port keeps the other protocols closed",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-tcp", Targets(podA),
				IngressRules(From(nil, ProtoOnly(corev1.ProtocolTCP))))},
			Protocol: corev1.ProtocolUDP, Port: 80,
			Want: ExpectAll().Ingress("x/a", false),
		},
		{
			Name:     "#31 stacked ingress, before: a port 80 policy closes port 81",
			Policies: []*networkingv1.NetworkPolicy{aIngress80},
			Port:     81,
			Want:     ExpectAll().Ingress("x/a", false),
		},
		{
			Name:      "#31 stacked ingress, after: an added allow-all ingress policy takes precedence",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{aIngress80, Policy("x", "allow-all-to-a", Targets(podA),
				IngressRules(From(nil)))},
			Port: 81,
			Want: ExpectAll(),
		},
		{
			Name:     "#32 stacked egress, before: a port 80 egress policy closes port 81",
			Policies: []*networkingv1.NetworkPolicy{aEgress80},
			Port:     81,
			Want:     ExpectAll().Egress("x/a", false),
		},
		{
			Name:      "#32 stacked egress, after: an added allow-all egress policy takes precedence",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aEgress80, aAllEgress},
			Port:      81,
			Want:      ExpectAll(),
		},
		{
			Name:     "#33 deleted policies, before: deny-all in both directions",
			Policies: []*networkingv1.NetworkPolicy{denyAll},
			Port:     80,
			Want:     ExpectAll().Ingress("x/*", false).Egress("x/*", false),
		},
		{
			Name:      "#33 deleted policies, after: nothing is enforced",
			Continues: true,
			Port:      80,
			Want:      ExpectAll(),
		},
	}
	cases = append(cases, ipBlockCases(addrs, podA)...)
	return append(cases, []Case{
		{
			Name:     "#37 independent directions, before: allow-all egress changes nothing",
			Policies: []*networkingv1.NetworkPolicy{aAllEgress},
			Port:     80,
			Want:     ExpectAll(),
		},
		{
			Name:      "#37 independent directions, after: adding a deny ingress closes only ingress",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{aAllEgress, Policy("x", "deny-ingress-a", Targets(podA),
				PolicyTypes(TypeIngress))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false),
		},
		{
			Name: "#38 an SCTP allow is not a TCP allow",
			Policies: []*networkingv1.NetworkPolicy{denyIngress, Policy("x", "allow-sctp-81", Targets(podA),
				IngressRules(From(nil, ProtoPort(corev1.ProtocolSCTP, 81))))},
			Port: 81,
			Want: ExpectAll().Ingress("x/*", false),
		},
		{
			Name:      "#38 the SCTP allow opens SCTP to its target only",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{denyIngress, Policy("x", "allow-sctp-81", Targets(podA),
				IngressRules(From(nil, ProtoPort(corev1.ProtocolSCTP, 81))))},
			Protocol: corev1.ProtocolSCTP, Port: 81,
			Want:    ExpectAll().Ingress("x/[bc]", false),
			TCPWant: ExpectAll().Ingress("x/*", false),
		},
		{
			Name: "#39 a policy allowing only SCTP isolates its target for TCP",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-sctp-80", Targets(podA),
				IngressRules(From(nil, ProtoPort(corev1.ProtocolSCTP, 80))))},
			Port: 81,
			Want: ExpectAll().Ingress("x/a", false),
		},
		{
			Name:      "#39 the SCTP-only policy allows its SCTP port",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-sctp-80", Targets(podA),
				IngressRules(From(nil, ProtoPort(corev1.ProtocolSCTP, 80))))},
			Protocol: corev1.ProtocolSCTP, Port: 80,
			Want:    ExpectAll(),
			TCPWant: ExpectAll().Ingress("x/a", false),
		},
		{
			Name: "#40 a policy allowing only UDP denies TCP on the same port",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-udp-81", Targets(podA),
				IngressRules(From(nil, ProtoPort(corev1.ProtocolUDP, 81))))},
			Port: 81,
			Want: ExpectAll().Ingress("x/a", false),
		},
		{
			Name:      "#40 the UDP-only policy allows UDP on its port",
			Continues: true,
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-udp-81", Targets(podA),
				IngressRules(From(nil, ProtoPort(corev1.ProtocolUDP, 81))))},
			Protocol: corev1.ProtocolUDP, Port: 81,
			Want: ExpectAll(),
		},
		{
			Name: "#41 matchLabels on the default namespace name label selects that namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-from-y-by-name", Targets(podA),
				IngressRules(From(Peers(NSPeer(LabelsSel(corev1.LabelMetadataName, "y"))))))},
			Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name: "#42 matchExpressions NotIn on the default namespace name label excludes that namespace",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "deny-to-y-by-name", Targets(podA), PolicyTypes(TypeEgress),
				EgressRules(To(Peers(NSPeer(ExprSel(corev1.LabelMetadataName, metav1.LabelSelectorOpNotIn, "y"))))))},
			Port: 80,
			Want: ExpectAll().Set("x/a", "y/*", false),
		},
		{
			Name:     "U1 a default-deny-ingress policy denies UDP",
			Policies: []*networkingv1.NetworkPolicy{denyIngress},
			Protocol: corev1.ProtocolUDP, Port: 80,
			Want: ExpectAll().Ingress("x/*", false),
		},
		{
			Name: "U2 a UDP port rule admits the namespace on that UDP port",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-udp-81-from-y", Targets(podA),
				IngressRules(From(Peers(NSPeer(nsY)), ProtoPort(corev1.ProtocolUDP, 81))))},
			Protocol: corev1.ProtocolUDP, Port: 81,
			Want: ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:     "U3 a pod-and-namespace peer admits only that pod over UDP",
			Policies: []*networkingv1.NetworkPolicy{aFromYa},
			Protocol: corev1.ProtocolUDP, Port: 80,
			Want: ExpectAll().Ingress("x/a", false).Set("y/a", "x/a", true),
		},
		{
			Name:     "S1 a default-deny-ingress policy denies SCTP",
			Policies: []*networkingv1.NetworkPolicy{denyIngress},
			Protocol: corev1.ProtocolSCTP, Port: 80,
			Want:    ExpectAll().Ingress("x/*", false),
			TCPWant: ExpectAll().Ingress("x/*", false),
		},
		{
			Name: "S2 an SCTP port rule admits the namespace on that SCTP port",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-sctp-81-from-y", Targets(podA),
				IngressRules(From(Peers(NSPeer(nsY)), ProtoPort(corev1.ProtocolSCTP, 81))))},
			Protocol: corev1.ProtocolSCTP, Port: 81,
			Want:    ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
			TCPWant: ExpectAll().Ingress("x/a", false),
		},
		{
			Name:     "S3 a pod-and-namespace peer admits only that pod over SCTP",
			Policies: []*networkingv1.NetworkPolicy{aFromYa},
			Protocol: corev1.ProtocolSCTP, Port: 80,
			Want:    ExpectAll().Ingress("x/a", false).Set("y/a", "x/a", true),
			TCPWant: ExpectAll().Ingress("x/a", false).Set("y/a", "x/a", true),
		},
	}...)
}
