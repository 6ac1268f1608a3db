package netpol

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestParsedPoliciesShareRepeatedParts checks what keeps the parse of many alike policies
// small: within one compile, policies with the same rules share the parsed rule lists and
// selectors, a policy with a problem keeps its own parse and reports the problem under its
// own name, and different rules are not shared.
func TestParsedPoliciesShareRepeatedParts(t *testing.T) {
	rules := func(app string) func(*networkingv1.NetworkPolicy) {
		return ingressRules(from(peers(podPeer(labelsSel("app", app))), protoPort(corev1.ProtocolTCP, 8080)))
	}
	sc, rc := selectorCache{}, ruleCache{}
	parse := func(np *networkingv1.NetworkPolicy) (*policyInfo, []error) { return parsePolicyInfo(np, sc, rc) }

	a, errs := parse(makePolicy("x", "a", targets(labelsSel("app", "web")), rules("db")))
	require.Empty(t, errs)
	b, errs := parse(makePolicy("y", "b", targets(labelsSel("app", "web")), rules("db")))
	require.Empty(t, errs)
	require.Len(t, a.ingress, 1)
	require.Len(t, b.ingress, 1)
	assert.Same(t, &a.ingress[0], &b.ingress[0], "equal rules share one parse")
	assert.Equal(t, "y", b.namespace, "the policy's own fields stay its own")
	assert.Equal(t, a.selector, b.selector, "equal selectors parse alike")

	c, errs := parse(makePolicy("x", "c", targets(labelsSel("app", "web")), rules("cache")))
	require.Empty(t, errs)
	assert.NotSame(t, &a.ingress[0], &c.ingress[0], "different rules are parsed apart")

	bad := func(name string) *networkingv1.NetworkPolicy {
		return makePolicy("x", name, ingressRules(from(peers(podPeer(exprSel("app", "Bogus", "db"))))))
	}
	d, errs := parse(bad("d"))
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "x/d")
	e, errs := parse(bad("e"))
	require.Len(t, errs, 1, "a rule list with a problem is parsed again, so each policy reports it")
	assert.Contains(t, errs[0].Error(), "x/e")
	assert.Empty(t, d.ingress[0].selectorPeers)
	assert.Empty(t, e.ingress[0].selectorPeers)
}
