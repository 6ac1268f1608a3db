package ccmstub

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// makeNode builds a Node named name with the tweaks applied in order.
func makeNode(name string, tweaks ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"}}
	for _, tweak := range tweaks {
		tweak(n)
	}
	return n
}

// annotated adds annotations given as key, value pairs.
func annotated(kv ...string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// labelled adds labels given as key, value pairs.
func labelled(kv ...string) func(*corev1.Node) {
	return func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

// tainted adds the uninitialized taint, as kubelet --cloud-provider=external does.
func tainted(n *corev1.Node) {
	n.Spec.Taints = append(n.Spec.Taints, uninitializedTaint())
}

func uninitializedTaint() corev1.Taint {
	return corev1.Taint{Key: UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}
}

// withTaints adds other taints.
func withTaints(taints ...corev1.Taint) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taints...) }
}

// withAddresses sets status.addresses, as a kubelet or another controller would have.
func withAddresses(addrs ...corev1.NodeAddress) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Status.Addresses = addrs }
}

// withProviderID sets spec.providerID, as kubelet --provider-id would.
func withProviderID(id string) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.ProviderID = id }
}

func internalIP(a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a}
}
func externalIP(a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: a}
}
func internalDNS(a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalDNS, Address: a}
}
func externalDNS(a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeExternalDNS, Address: a}
}
func hostnameAddr(a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeHostName, Address: a}
}
