package ccmstub

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// blocker is one reason a node must keep the uninitialized taint.
type blocker struct {
	// reason is the Warning Event reason, or "" for the ordinary wait for the agent, which
	// every new node goes through and which gets a log line but no Event.
	reason  string
	message string
}

// taintBlockers says why the node must keep the uninitialized taint; none means it may go.
//
// The taint goes only once the addresses exist (as in K3s, whose InstanceMetadata fails with
// "address annotations not yet set" until the agent has written <program>.io/internal-ip, the
// fix in PR #4218 for nodes that became schedulable before they had addresses), and, as the
// upstream cloud-node controller requires, only when every IP the kubelet was given with
// --node-ip (annotation alpha.kubernetes.io/provided-node-ip) is among those addresses:
// otherwise the node would be initialized with addresses its kubelet does not serve on.
func taintBlockers(node *corev1.Node, meta Metadata, keys Keys) []blocker {
	if !meta.HasInternalIP() {
		return []blocker{{message: fmt.Sprintf("waiting for the agent to write annotation %s", keys.InternalIP)}}
	}
	provided := strings.TrimSpace(node.Annotations[ProvidedNodeIPAnnotation])
	if provided == "" {
		return nil
	}
	have := map[netip.Addr]bool{}
	for _, a := range meta.Addresses {
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			have[ip] = true
		}
	}
	var out []blocker
	for item := range strings.SplitSeq(provided, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		ip, err := parseIP(item)
		switch {
		case err != nil:
			out = append(out, blocker{reason: ReasonProvidedNodeIPNotFound, message: fmt.Sprintf(
				"annotation %s: %v; the node keeps taint %s", ProvidedNodeIPAnnotation, err, UninitializedTaint)})
		case !have[ip]:
			out = append(out, blocker{reason: ReasonProvidedNodeIPNotFound, message: fmt.Sprintf(
				"the kubelet's node IP %s (annotation %s) is not among the addresses from %s and %s (%s); the node keeps taint %s",
				ip, ProvidedNodeIPAnnotation, keys.InternalIP, keys.ExternalIP, formatAddresses(meta.Addresses), UninitializedTaint)})
		}
	}
	return out
}

// hasUninitializedTaint reports whether the node carries the uninitialized taint, whatever its effect.
func hasUninitializedTaint(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == UninitializedTaint {
			return true
		}
	}
	return false
}

// withoutUninitializedTaint returns taints without the uninitialized taint, in a new slice; the
// upstream cloud-node controller also removes it by key, whatever its effect.
func withoutUninitializedTaint(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Key != UninitializedTaint {
			out = append(out, t)
		}
	}
	return out
}
