package netpoltest

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// EndPortCases are port-range cases on the same model, which the upstream e2e list lacks:
// Cyclonus's end-port family (an endPort range ending on the model's port 80, one starting on
// 81, per protocol and direction). They are named R1, R2, ...; a range admits exactly the ports
// from port to endPort of its protocol.
func EndPortCases() []Case {
	var (
		tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
		podA     = LabelsSel("pod", "a")
		nsY      = LabelsSel("ns", "y")
		aTo80    = Policy("x", "allow-53-80", Targets(podA), IngressRules(From(nil, PortRange(tcp, 53, 80))))
		aUDP81Y  = Policy("x", "allow-udp-81-84-from-y", Targets(podA), IngressRules(From(Peers(NSPeer(nsY)), PortRange(udp, 81, 84))))
		xOut80   = Policy("x", "allow-egress-53-80", PolicyTypes(TypeEgress), EgressRules(To(nil, PortRange(tcp, 53, 80))))
	)
	return []Case{
		{
			Name:     "R1 an ingress endPort range admits its last port",
			Policies: []*networkingv1.NetworkPolicy{aTo80},
			Port:     80,
			Want:     ExpectAll(),
		},
		{
			Name:      "R1 an ingress endPort range refuses the port after it",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aTo80},
			Port:      81,
			Want:      ExpectAll().Ingress("x/a", false),
		},
		{
			Name:     "R2 a UDP endPort range from a namespace admits its first port from that namespace",
			Policies: []*networkingv1.NetworkPolicy{aUDP81Y},
			Protocol: udp,
			Port:     81,
			Want:     ExpectAll().Ingress("x/a", false).Set("y/*", "x/a", true),
		},
		{
			Name:      "R2 a UDP endPort range refuses the port before it",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aUDP81Y},
			Protocol:  udp,
			Port:      80,
			Want:      ExpectAll().Ingress("x/a", false),
		},
		{
			Name:      "R2 a UDP endPort range is not a TCP range",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{aUDP81Y},
			Port:      81,
			Want:      ExpectAll().Ingress("x/a", false),
		},
		{
			Name:     "R3 an egress endPort range admits its last port",
			Policies: []*networkingv1.NetworkPolicy{xOut80},
			Port:     80,
			Want:     ExpectAll(),
		},
		{
			Name:      "R3 an egress endPort range refuses the port after it",
			Continues: true,
			Policies:  []*networkingv1.NetworkPolicy{xOut80},
			Port:      81,
			Want:      ExpectAll().Egress("x/*", false),
		},
	}
}
