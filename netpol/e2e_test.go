package netpol

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/k3snet/k3snet/netpol/netpoltest"

	"github.com/k3snet/k3snet/netpol/reference"
)

// upstreamE2ECases returns the upstream e2e list on the model's addresses, shared by the
// evaluator table test and the dataplane test that replays it with real packets.
func upstreamE2ECases() []netpoltest.Case {
	return netpoltest.UpstreamE2E(netpoltest.ModelAddresses())
}

// caseProbe returns the probe of a case, in the family of the destination's primary address.
func caseProbe(c netpoltest.Case) reference.Probe {
	return reference.Probe{Protocol: c.Protocol, Port: c.Port}
}

// TestEvaluateUpstreamE2E replays the upstream e2e NetworkPolicy tests on their full 3×3 model
// and asserts the whole reachability matrix of each, in both address families.
func TestEvaluateUpstreamE2E(t *testing.T) {
	for _, tt := range upstreamE2ECases() {
		for _, family := range tt.RunFamilies() {
			t.Run(tt.Name+" ("+string(family)+")", func(t *testing.T) {
				m := newModel(tt.NamespaceTweaks, tt.PodTweaks)
				probe := caseProbe(tt)
				probe.Family = family
				got, err := reference.Reachability(m.cluster(tt.Policies...), m.endpoints(), probe)
				require.NoError(t, err)
				assertMatrix(t, expectedMatrix(tt.Want, probe), got)
				if tt.TCPWant != nil {
					probe.Protocol = corev1.ProtocolTCP
					got, err := reference.Reachability(m.cluster(tt.Policies...), m.endpoints(), probe)
					require.NoError(t, err)
					assertMatrix(t, expectedMatrix(tt.TCPWant, probe), got)
				}
			})
		}
	}
}

// TestEvaluateEndPortCases checks the port-range cases the real-node tests replay against the
// evaluator, in both address families.
func TestEvaluateEndPortCases(t *testing.T) {
	for _, tt := range netpoltest.EndPortCases() {
		for _, family := range tt.RunFamilies() {
			t.Run(tt.Name+" ("+string(family)+")", func(t *testing.T) {
				m := newModel(tt.NamespaceTweaks, tt.PodTweaks)
				probe := caseProbe(tt)
				probe.Family = family
				got, err := reference.Reachability(m.cluster(tt.Policies...), m.endpoints(), probe)
				require.NoError(t, err)
				assertMatrix(t, expectedMatrix(tt.Want, probe), got)
			})
		}
	}
}
