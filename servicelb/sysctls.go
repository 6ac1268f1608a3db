package servicelb

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const (
	// ReasonSysctlForbidden (Warning) reports an LB pod its kubelet refused because the
	// forwarding sysctls are not among the kubelet's allowed unsafe sysctls. K3s's own kubelet
	// allows them, so K3s has no such Event; a stock kubelet does not.
	ReasonSysctlForbidden = "SysctlForbidden"

	// podReasonSysctlForbidden is the status.reason the kubelet sets on a pod it rejects for
	// its sysctls, with phase Failed.
	podReasonSysctlForbidden = "SysctlForbidden"

	// kubeletSysctlsFlag is the kubelet flag that lets LB pods of either family start.
	kubeletSysctlsFlag = "--allowed-unsafe-sysctls=" + sysctlIPv4Forward + "," + sysctlIPv6Forward
)

// sysctlForbidden reports whether the kubelet rejected pod for its sysctls.
func sysctlForbidden(pod *corev1.Pod) bool {
	return pod != nil && pod.Status.Phase == corev1.PodFailed && pod.Status.Reason == podReasonSysctlForbidden
}

// newlySysctlForbidden reports whether cur is a rejection that old (nil for a pod the cache
// did not have) was not yet: each rejected pod is announced once, not on every later update
// or sync. A pod is rejected once; the DaemonSet controller replaces it, with backoff, by a
// new pod, which is a new failure.
func newlySysctlForbidden(old, cur *corev1.Pod) bool {
	return sysctlForbidden(cur) && !sysctlForbidden(old)
}

// sysctlForbiddenMessage is the Warning for a rejected LB pod: the node, the sysctls and the
// kubelet flag that allows them. It names no pod, so the rejections of one node's replacement
// pods read the same and the Event recorder folds them into one Event with a count.
func sysctlForbiddenMessage(pod *corev1.Pod) string {
	var names []string
	if sc := pod.Spec.SecurityContext; sc != nil {
		for _, s := range sc.Sysctls {
			names = append(names, s.Name)
		}
	}
	node := pod.Spec.NodeName
	if node == "" {
		node = "<unknown>"
	}
	return fmt.Sprintf("the kubelet of node %s refused the LB pod: the unsafe sysctls %s are not allowed there; "+
		"start the kubelet with %s", node, strings.Join(names, ","), kubeletSysctlsFlag)
}
