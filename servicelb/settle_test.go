package servicelb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSettleStatus(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	pod := func(ago time.Duration, tweaks ...podTweak) *corev1.Pod {
		p := makePod("kube-system", "svclb", "a", tweaks...)
		p.CreationTimestamp = metav1.NewTime(now.Add(-ago))
		return p
	}
	readyPod := pod(time.Minute, ready("10.42.0.1", corev1.ConditionTrue))
	youngPod := pod(time.Second) // bound to a node, not ready: waited for boundPodSettleWindow
	filling := &appsv1.DaemonSet{}
	filling.CreationTimestamp = metav1.NewTime(now.Add(-time.Minute))
	filling.Status.DesiredNumberScheduled = 3
	updated := func(old, cur []corev1.LoadBalancerIngress) *statusEvent {
		typ, reason, msg := ingressEvent(old, cur)
		return &statusEvent{typ, reason, msg}
	}
	unavailable := &statusEvent{corev1.EventTypeWarning, ReasonUnAvailableLoadBalancer, messageUnAvailableLoadBalancer}
	tests := []struct {
		name string
		in   statusInput
		want statusDecision
	}{
		{name: "an unchanged status writes nothing and says nothing",
			in:   statusInput{old: vip("10.0.0.1"), ingress: vip("10.0.0.1"), lbPods: []*corev1.Pod{readyPod}},
			want: statusDecision{forgetWarning: true}},
		{name: "a first address with every pod ready is written with UpdatedLoadBalancer",
			in:   statusInput{ingress: vip("10.0.0.1"), lbPods: []*corev1.Pod{readyPod}},
			want: statusDecision{write: true, forgetWarning: true, event: updated(nil, vip("10.0.0.1"))}},
		{name: "a growing status waits for a young pod on its way",
			in:   statusInput{old: vip("10.0.0.1"), ingress: vip("10.0.0.1", "10.0.0.2"), lbPods: []*corev1.Pod{readyPod, youngPod}},
			want: statusDecision{wait: boundPodSettleWindow - time.Second}},
		{name: "a growing status waits while the DaemonSet has pods to create",
			in: statusInput{ingress: vip("10.0.0.1"), lbPods: []*corev1.Pod{pod(2*time.Second, ready("10.42.0.1", corev1.ConditionTrue))},
				daemonSet: filling},
			want: statusDecision{wait: statusSettleWindow - 2*time.Second}},
		{name: "a shrinking status is never held",
			in: statusInput{old: vip("10.0.0.1", "10.0.0.2"), ingress: vip("10.0.0.1"), lbPods: []*corev1.Pod{readyPod, youngPod},
				daemonSet: filling},
			want: statusDecision{write: true, forgetWarning: true, event: updated(vip("10.0.0.1", "10.0.0.2"), vip("10.0.0.1"))}},
		{name: "a status emptied is written with UnAvailableLoadBalancer",
			in:   statusInput{old: vip("10.0.0.1")},
			want: statusDecision{write: true, forgetWarning: true, warning: unavailable}},
		{name: "an empty status no node can host says why, once per reason",
			in: statusInput{unplaceable: "1 node(s) have port 80 taken"},
			want: statusDecision{warning: &statusEvent{corev1.EventTypeWarning, ReasonUnAvailableLoadBalancer,
				messageUnAvailableLoadBalancer + ": 1 node(s) have port 80 taken"}}},
		{name: "an empty status with pods to come says nothing and forgets the last Warning",
			in:   statusInput{lbPods: []*corev1.Pod{youngPod}},
			want: statusDecision{forgetWarning: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.now = now
			assert.Equal(t, tt.want, settleStatus(tt.in))
		})
	}
}
