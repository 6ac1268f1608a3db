package netpol

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestApplyAddsLocalPodToTailSetAfterItsChain applies a state, then the same with one more
// local pod, and checks the order of the commands: the pod's chain and jumps are restored
// before its address joins the set the tail chain lets through, so no packet can reach the
// pod between the two (issue 4: a new pod is never reachable before it is programmed). The
// second sync updates set members in place: it creates no set and rewrites no chain whole.
func TestApplyAddsLocalPodToTailSetAfterItsChain(t *testing.T) {
	kernel := &fakeKernel{}
	// The built-in chains list our jumps first, as the first Apply left them.
	dp := NewDataplane(func(ctx context.Context, stdin, name string, args ...string) (string, error) {
		out, err := kernel.run(ctx, stdin, name, args...)
		if name == "iptables" && len(args) == 4 && args[2] == "-S" {
			for _, bc := range builtinChains() {
				if bc[0] == args[3] {
					out = "-P " + bc[0] + " ACCEPT\n-A " + bc[0] + " " + jumpRule(bc[0], bc[1]) + "\n"
				}
			}
		}
		return out, err
	})
	deny := makePolicy("x", "deny", ingressRules())
	in := Input{NodeName: nodeName, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/24")},
		Namespaces: []*corev1.Namespace{makeNamespace("x")}, Policies: []*networkingv1.NetworkPolicy{deny},
		Pods: []*corev1.Pod{makePod("x", "a", onNode(nodeName), withIPs("10.42.0.5"))}}
	st, err := Compile(in)
	require.NoError(t, err)
	require.NoError(t, dp.Apply(t.Context(), st))
	first := kernel.count()

	in.Pods = append(in.Pods, makePod("x", "b", onNode(nodeName), withIPs("10.42.0.6")))
	st, err = Compile(in)
	require.NoError(t, err)
	require.NoError(t, dp.Apply(t.Context(), st))
	calls := kernel.calls[first:]
	restore := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "iptables-restore ") })
	require.NotEqual(t, -1, restore, "the pod's chain is restored: %q", calls)
	for i, c := range calls {
		if strings.HasPrefix(c, "ipset restore") && i < restore {
			assert.NotContains(t, c, "10.42.0.6", "before the rules, no set may gain the new local pod's address that lets it through the tail")
			assert.NotContains(t, c, "create ", "no set is created for a pod event")
		}
	}
	tail := calls[len(calls)-1]
	assert.Regexp(t, `^ipset restore\nadd KUBE-DST-\w+ 10\.42\.0\.6\n$`, tail, "the last command adds the pod to the programmed set")
	assert.NotContains(t, calls[restore], ":KUBE-ROUTER-FORWARD ", "the top-level chains are edited in place, not rewritten")
	assert.Contains(t, calls[restore], "-I KUBE-ROUTER-FORWARD 3 -d 10.42.0.6 ")
}
