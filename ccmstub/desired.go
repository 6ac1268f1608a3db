package ccmstub

import (
	corev1 "k8s.io/api/core/v1"
)

// newNode returns the Node as the stub wants it, a copy of node with meta applied,
// and the reasons it must keep the uninitialized taint, if it has it.
//
// A node whose agent has not published an internal IP yet is left as it is: like the upstream
// cloud-node controller, which applies everything at once when InstanceMetadata succeeds, the
// stub does not claim spec.providerID (which cannot be changed once set) for a node it cannot
// initialize, e.g. one whose agent runs with --disable-cloud-controller for an external CCM.
// Once it has one:
//   - status.addresses become meta.Addresses;
//   - spec.providerID is set unless it is;
//   - node.kubernetes.io/instance-type and its beta twin, and the zone and region labels with
//     their beta twins, are filled in where missing, never overwritten: a user's or kubelet's
//     label wins, as in K3s, which only echoes them;
//   - the uninitialized taint goes when taintBlockers finds nothing in the way.
func newNode(node *corev1.Node, meta Metadata, keys Keys) (*corev1.Node, []blocker) {
	n := node.DeepCopy()
	if meta.HasInternalIP() {
		n.Status.Addresses = meta.Addresses
		if n.Spec.ProviderID == "" {
			n.Spec.ProviderID = meta.ProviderID
		}
		setMissingLabels(n, meta.InstanceType, corev1.LabelInstanceTypeStable, corev1.LabelInstanceType)
		setMissingLabels(n, meta.Zone, corev1.LabelTopologyZone, corev1.LabelFailureDomainBetaZone)
		setMissingLabels(n, meta.Region, corev1.LabelTopologyRegion, corev1.LabelFailureDomainBetaRegion)
	}
	if !hasUninitializedTaint(n) {
		return n, nil
	}
	blockers := taintBlockers(n, meta, keys)
	if len(blockers) == 0 {
		n.Spec.Taints = withoutUninitializedTaint(n.Spec.Taints)
	}
	return n, blockers
}

// setMissingLabels sets each of keys that the node lacks to value; an empty value sets nothing.
func setMissingLabels(n *corev1.Node, value string, keys ...string) {
	if value == "" {
		return
	}
	for _, k := range keys {
		if n.Labels[k] != "" {
			continue
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = value
	}
}
