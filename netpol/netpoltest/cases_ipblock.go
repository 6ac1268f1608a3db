package netpoltest

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ipBlockCases are #34 to #36 in each family addrs has a range and the pods' addresses of:
// their ipBlocks name pod addresses and a range holding every pod. Upstream's #36 updates the
// policy of #35; a family's case continues the other family's.
func ipBlockCases(addrs Addresses, podA *metav1.LabelSelector) []Case {
	var s34, s35, s36 []Case
	for _, f := range []struct {
		family corev1.IPFamily
		word   string
	}{{corev1.IPv4Protocol, "IPv4"}, {corev1.IPv6Protocol, "IPv6"}} {
		podRange, okRange := addrs.podRange(f.family)
		xb, okXB := addrs.host("x/b", f.family)
		yb, okYB := addrs.host("y/b", f.family)
		if !okRange || !okXB || !okYB {
			continue
		}
		only := []corev1.IPFamily{f.family}
		s34 = append(s34, Case{
			Name: "#34 an egress ipBlock of one pod's " + f.word + " address allows only that pod",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-cidr", Targets(podA), PolicyTypes(TypeEgress),
				EgressRules(To(Peers(CIDRPeer(yb)))))},
			Port:      80,
			Families:  only,
			Want:      ExpectAll().Egress("x/a", false).Set("x/a", "y/b", true),
			Continues: len(s34) > 0,
		})
		s35 = append(s35, Case{
			Name: "#35 an " + f.word + " ipBlock except removes one pod from the allowed block",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-cidr-except", Targets(podA), PolicyTypes(TypeEgress),
				EgressRules(To(Peers(CIDRPeer(podRange, xb)))))},
			Port:      80,
			Families:  only,
			Want:      ExpectAll().Set("x/a", "x/b", false),
			Continues: len(s35) > 0,
		})
		s36 = append(s36, Case{
			Name: "#36 updating the " + f.word + " policy to the excepted address alone allows only it",
			Policies: []*networkingv1.NetworkPolicy{Policy("x", "allow-cidr-except", Targets(podA), PolicyTypes(TypeEgress),
				EgressRules(To(Peers(CIDRPeer(xb)))))},
			Port:      80,
			Families:  only,
			Want:      ExpectAll().Egress("x/a", false).Set("x/a", "x/b", true),
			Continues: true,
		})
	}
	return slices.Concat(s34, s35, s36)
}
