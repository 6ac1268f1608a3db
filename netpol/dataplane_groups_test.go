package netpol

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/k3snet/k3snet/internal/netns"
)

// TestDataplaneSameGroupJudgesReceiverAndSenderApart sends real packets between x/a and x/b,
// two local pods one policy selects and so the same groups' chains judge. Traffic between them
// passes only if the receiver's ingress and the sender's egress both allow it: one
// direction's allow must not stand in for the other's deny.
func TestDataplaneSameGroupJudgesReceiverAndSenderApart(t *testing.T) {
	t.Parallel()
	tn := newTestNode(t)
	xa, xb := tn.hosts[0], tn.hosts[1]
	require.Equal(t, []string{"x/a", "x/b"}, []string{xa.pod.Namespace + "/" + xa.pod.Name, xb.pod.Namespace + "/" + xb.pod.Name})
	both := policyTypes(typeIngress, typeEgress)
	allowAll := func(p *networkingv1.NetworkPolicy) {
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	}
	for _, tt := range []struct {
		name    string
		policy  *networkingv1.NetworkPolicy
		allowed bool
	}{
		{name: "both directions open", policy: makePolicy("x", "open", both, allowAll), allowed: true},
		{name: "ingress open, egress closed", policy: makePolicy("x", "no-egress", both, ingressRules(from(nil)))},
		{name: "ingress closed, egress open", policy: makePolicy("x", "no-ingress", both, egressRules(to(nil)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tn.input(tt.policy)
			st, err := Compile(in)
			require.NoError(t, err)
			rs := ruleset(t, st, corev1.IPv4Protocol)
			for _, dir := range []string{dirIngress, dirEgress} {
				group := groupChainOf(rs, dir, xa.v4.String())
				require.NotEmpty(t, group)
				require.Equal(t, group, groupChainOf(rs, dir, xb.v4.String()), "x/a and x/b share their %s group", dir)
			}
			tn.apply(t, in)
			for _, pair := range [][2]testHost{{xa, xb}, {xb, xa}} {
				err := pair[0].ns.Probe(netns.TCP, netip.AddrPortFrom(pair[1].v4, 80), probeAllowed)
				if tt.allowed {
					assert.NoError(t, err, "%s → %s", pair[0].pod.Name, pair[1].pod.Name)
				} else {
					assert.True(t, netns.IsBlocked(err), "%s → %s must be denied: %v", pair[0].pod.Name, pair[1].pod.Name, err)
				}
			}
		})
	}
}
