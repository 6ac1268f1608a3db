package ccmstub

import (
	corev1 "k8s.io/api/core/v1"
)

// Metadata is what the stub reports for a Node, the fields of the upstream cloud-provider
// InstanceMetadata. NodeMetadata derives it; the Controller writes it onto the Node
// and the cloudprovider subpackage returns it to the upstream cloud-node controller.
type Metadata struct {
	// ProviderID is the node's spec.providerID if set (e.g. by kubelet --provider-id), else
	// "<program>://<node name>".
	ProviderID string
	// InstanceType is the node's node.kubernetes.io/instance-type label (or the beta label) if
	// set, else the program name.
	InstanceType string
	// Zone and Region are echoed from the node's topology labels (or the beta failure-domain
	// labels); the stub knows no zones of its own.
	Zone, Region string
	// Addresses are the node's addresses in K3s's order (see NodeMetadata).
	Addresses []corev1.NodeAddress
	// Invalid lists the annotation and label items left out of Addresses.
	Invalid []InvalidValue
}

// HasInternalIP reports whether the agent has published the node's internal IPs. Until it has,
// the node keeps the uninitialized taint and its status.addresses are left alone, the fix K3s
// made in PR #4218 for nodes that were untainted before their addresses existed.
func (m Metadata) HasInternalIP() bool { return hasInternalIP(m.Addresses) }

// NodeMetadata derives a Node's metadata from the annotations and labels its agent wrote.
// Addresses come, in this order, from the annotations <program>.io/internal-ip and external-ip
// (comma lists of IPv4 and IPv6 addresses, each falling back to the legacy single-value label of
// the same key), internal-dns and external-dns (comma lists of names) and hostname (one name,
// also with a legacy label; without either the kubelet's Hostname addresses are kept). Items
// that are not IPs or DNS names are left out and listed in Invalid.
func NodeMetadata(node *corev1.Node, keys Keys) Metadata {
	addrs, invalid := nodeAddresses(node, keys)
	m := Metadata{
		ProviderID:   node.Spec.ProviderID,
		InstanceType: firstLabel(node, corev1.LabelInstanceTypeStable, corev1.LabelInstanceType),
		Zone:         firstLabel(node, corev1.LabelTopologyZone, corev1.LabelFailureDomainBetaZone),
		Region:       firstLabel(node, corev1.LabelTopologyRegion, corev1.LabelFailureDomainBetaRegion),
		Addresses:    addrs,
		Invalid:      invalid,
	}
	if m.ProviderID == "" {
		m.ProviderID = keys.ProviderIDPrefix + node.Name
	}
	if m.InstanceType == "" {
		m.InstanceType = keys.InstanceType
	}
	return m
}

// firstLabel returns the value of the first of keys that the node has with a non-empty value.
func firstLabel(node *corev1.Node, keys ...string) string {
	for _, k := range keys {
		if v := node.Labels[k]; v != "" {
			return v
		}
	}
	return ""
}
