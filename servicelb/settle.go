package servicelb

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// statusInput is what a sync knows when it decides about a served Service's status.
type statusInput struct {
	// old is the stored status, ingress the one computed from the ready LB pods.
	old, ingress []corev1.LoadBalancerIngress
	// lbPods are the Service's LB pods, daemonSet its DaemonSet (nil if not cached yet).
	lbPods    []*corev1.Pod
	daemonSet *appsv1.DaemonSet
	// unplaceable says why no node can host the LB; set only when ingress is empty and no
	// node is eligible.
	unplaceable string
	now         time.Time
}

// statusEvent is an Event about a Service's status.
type statusEvent struct{ eventType, reason, message string }

// statusDecision is what the sync does with the computed status.
type statusDecision struct {
	// wait > 0 holds the status back: the Service syncs again after wait and nothing else
	// happens now.
	wait time.Duration
	// write patches the status to the computed ingress list.
	write bool
	// forgetWarning clears the last Warning remembered for the Service, so that the next one
	// is recorded even if it says the same.
	forgetWarning bool
	// event is recorded as is; warning is recorded unless it repeats the last Warning.
	event, warning *statusEvent
}

// settleStatus is ServiceLB's status rule. A status that adds addresses waits while young LB
// pods are on their way (podsSettling, daemonSetFilling), so a new DaemonSet's nodes are
// published in one write and one Event instead of one per pod; a status that removes
// addresses is never held. A written status with addresses gets K3s's Normal
// UpdatedLoadBalancer Event; an empty one K3s's Warning UnAvailableLoadBalancer, with the
// reason no node can host the LB when there is one, and that Warning is repeated only when
// it says something new.
func settleStatus(in statusInput) statusDecision {
	changed := !ingressEqual(in.old, in.ingress)
	if changed && ingressGrows(in.old, in.ingress) {
		wait := podsSettling(in.lbPods, in.now, statusSettleWindow, boundPodSettleWindow)
		if in.daemonSet != nil {
			wait = max(wait, daemonSetFilling(in.daemonSet, in.lbPods, in.now, statusSettleWindow))
		}
		if wait > 0 {
			return statusDecision{wait: wait}
		}
	}
	d := statusDecision{write: changed}
	typ, reason, msg := ingressEvent(in.old, in.ingress)
	switch {
	case len(in.ingress) > 0:
		d.forgetWarning = true
		if changed {
			d.event = &statusEvent{typ, reason, msg}
		}
	case changed || in.unplaceable != "":
		// A changed status is said even if the reasons did not change.
		d.forgetWarning = changed
		if in.unplaceable != "" {
			msg += ": " + in.unplaceable
		}
		d.warning = &statusEvent{typ, reason, msg}
	default:
		d.forgetWarning = true
	}
	return d
}
