package ccmstub

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestNewNodeTaint(t *testing.T) {
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name          string
		node          *corev1.Node
		wantTaints    []corev1.Taint
		wantBlockers  []string // reason: message fragment; reason empty for the quiet wait
		wantAddresses []corev1.NodeAddress
	}{
		{
			name:          "without annotations the taint stays and the kubelet's addresses are left alone",
			node:          makeNode("a", tainted, withAddresses(hostnameAddr("a"))),
			wantTaints:    []corev1.Taint{uninitializedTaint()},
			wantBlockers:  []string{": waiting for the agent to write annotation k3s.io/internal-ip"},
			wantAddresses: []corev1.NodeAddress{hostnameAddr("a")},
		},
		{
			name:         "DNS names and a hostname alone are not enough",
			node:         makeNode("a", tainted, annotated("k3s.io/internal-dns", "a.internal", "k3s.io/hostname", "a")),
			wantTaints:   []corev1.Taint{uninitializedTaint()},
			wantBlockers: []string{": waiting for the agent"},
		},
		{
			name:         "an internal-ip annotation with only garbage keeps the taint",
			node:         makeNode("a", tainted, annotated("k3s.io/internal-ip", "garbage")),
			wantTaints:   []corev1.Taint{uninitializedTaint()},
			wantBlockers: []string{": waiting for the agent"},
		},
		{
			name:          "an internal IP lets the taint go and keeps other taints",
			node:          makeNode("a", tainted, withTaints(notReady), annotated("k3s.io/internal-ip", "10.0.0.1")),
			wantTaints:    []corev1.Taint{notReady},
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1")},
		},
		{
			name:          "a legacy internal-ip label lets the taint go",
			node:          makeNode("a", tainted, labelled("k3s.io/internal-ip", "10.0.0.1")),
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1")},
		},
		{
			name: "the taint goes whatever its effect",
			node: makeNode("a", withTaints(corev1.Taint{Key: UninitializedTaint, Effect: corev1.TaintEffectNoExecute}),
				annotated("k3s.io/internal-ip", "10.0.0.1")),
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1")},
		},
		{
			name: "the kubelet's dual-stack node IPs among the addresses let the taint go",
			node: makeNode("a", tainted, annotated(
				"k3s.io/internal-ip", "10.0.0.1,fd00::1",
				ProvidedNodeIPAnnotation, "fd00::1,10.0.0.1")),
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1"), internalIP("fd00::1")},
		},
		{
			name: "a kubelet node IP that is an external address counts too",
			node: makeNode("a", tainted, annotated(
				"k3s.io/internal-ip", "10.0.0.1",
				"k3s.io/external-ip", "203.0.113.7",
				ProvidedNodeIPAnnotation, "203.0.113.7")),
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1"), externalIP("203.0.113.7")},
		},
		{
			name: "a kubelet node IP missing from the addresses keeps the taint with a warning",
			node: makeNode("a", tainted, annotated(
				"k3s.io/internal-ip", "10.0.0.1",
				ProvidedNodeIPAnnotation, "10.0.0.1,fd00::9")),
			wantTaints: []corev1.Taint{uninitializedTaint()},
			wantBlockers: []string{ReasonProvidedNodeIPNotFound +
				": the kubelet's node IP fd00::9 (annotation alpha.kubernetes.io/provided-node-ip) is not among the addresses from k3s.io/internal-ip and k3s.io/external-ip (InternalIP 10.0.0.1)"},
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1")},
		},
		{
			name: "an unreadable kubelet node IP keeps the taint with a warning",
			node: makeNode("a", tainted, annotated(
				"k3s.io/internal-ip", "10.0.0.1",
				ProvidedNodeIPAnnotation, "ten")),
			wantTaints:    []corev1.Taint{uninitializedTaint()},
			wantBlockers:  []string{ReasonProvidedNodeIPNotFound + `: annotation alpha.kubernetes.io/provided-node-ip: "ten" is not an IP address`},
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1")},
		},
		{
			name: "a node without the taint has no blockers, even with a mismatched kubelet IP",
			node: makeNode("a", withTaints(notReady), annotated(
				"k3s.io/internal-ip", "10.0.0.1",
				ProvidedNodeIPAnnotation, "10.9.9.9")),
			wantTaints:    []corev1.Taint{notReady},
			wantAddresses: []corev1.NodeAddress{internalIP("10.0.0.1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := NewKeys("")
			before := tt.node.DeepCopy()
			got, blockers := newNode(tt.node, NodeMetadata(tt.node, keys), keys)
			assert.Equal(t, tt.wantTaints, got.Spec.Taints)
			assert.Equal(t, tt.wantAddresses, got.Status.Addresses)
			assert.Len(t, blockers, len(tt.wantBlockers))
			for i, want := range tt.wantBlockers {
				if i < len(blockers) {
					assert.Contains(t, blockers[i].reason+": "+blockers[i].message, want)
				}
			}
			assert.Equal(t, before, tt.node, "newNode must not change its input")
		})
	}
}

func TestNewNodeIdentity(t *testing.T) {
	tests := []struct {
		name           string
		node           *corev1.Node
		wantProviderID string
		wantLabels     map[string]string
	}{
		{
			name:           "an annotated node gets k3s://<name> and both instance-type labels",
			node:           makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1")),
			wantProviderID: "k3s://a",
			wantLabels:     map[string]string{corev1.LabelInstanceTypeStable: "k3s", corev1.LabelInstanceType: "k3s"},
		},
		{
			name:           "a set providerID and instance type are kept; the missing beta twin echoes the stable label",
			node:           makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1"), withProviderID("kind://x/y/a"), labelled(corev1.LabelInstanceTypeStable, "big")),
			wantProviderID: "kind://x/y/a",
			wantLabels:     map[string]string{corev1.LabelInstanceTypeStable: "big", corev1.LabelInstanceType: "big"},
		},
		{
			name:           "differing stable and beta labels are both left as they are",
			node:           makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1"), labelled(corev1.LabelInstanceTypeStable, "new", corev1.LabelInstanceType, "old")),
			wantProviderID: "k3s://a",
			wantLabels:     map[string]string{corev1.LabelInstanceTypeStable: "new", corev1.LabelInstanceType: "old"},
		},
		{
			name:           "zone and region are echoed into their missing twins",
			node:           makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1"), labelled(corev1.LabelTopologyZone, "z1", corev1.LabelFailureDomainBetaRegion, "r1")),
			wantProviderID: "k3s://a",
			wantLabels: map[string]string{
				corev1.LabelInstanceTypeStable: "k3s", corev1.LabelInstanceType: "k3s",
				corev1.LabelTopologyZone: "z1", corev1.LabelFailureDomainBetaZone: "z1",
				corev1.LabelTopologyRegion: "r1", corev1.LabelFailureDomainBetaRegion: "r1",
			},
		},
		{
			name:       "a node its agent has not annotated is left alone",
			node:       makeNode("a", tainted, labelled(corev1.LabelTopologyZone, "z1")),
			wantLabels: map[string]string{corev1.LabelTopologyZone: "z1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := NewKeys("")
			got, _ := newNode(tt.node, NodeMetadata(tt.node, keys), keys)
			assert.Equal(t, tt.wantProviderID, got.Spec.ProviderID)
			assert.Equal(t, tt.wantLabels, got.Labels)
		})
	}
}
