package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/k3snet/k3snet/internal/events"
)

// rejected is what the kubelet writes on a pod whose sysctls it does not allow.
func rejected(p *corev1.Pod) {
	p.Status = corev1.PodStatus{
		Phase:   corev1.PodFailed,
		Reason:  "SysctlForbidden",
		Message: `Pod forbidden sysctl: "net.ipv4.ip_forward" not allowlisted`,
	}
}

func withSysctls(names ...string) podTweak {
	return func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{}
		for _, n := range names {
			p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
		}
	}
}

func TestNewlySysctlForbidden(t *testing.T) {
	pending := makePod("kube-system", "svclb-web-1", "a", phase(corev1.PodPending))
	running := makePod("kube-system", "svclb-web-1", "a")
	forbidden := makePod("kube-system", "svclb-web-1", "a", rejected)
	otherFailure := makePod("kube-system", "svclb-web-1", "a", func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "OutOfcpu"}
	})
	pendingWithReason := makePod("kube-system", "svclb-web-1", "a", func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Reason: "SysctlForbidden"}
	})
	tests := []struct {
		name     string
		old, cur *corev1.Pod
		want     bool
	}{
		{name: "a pod the kubelet rejects after it was pending", old: pending, cur: forbidden, want: true},
		{name: "a rejected pod the cache did not have (a start or relist)", old: nil, cur: forbidden, want: true},
		{name: "a running pod failing with SysctlForbidden", old: running, cur: forbidden, want: true},
		{name: "a later update of a pod already rejected is not a new failure", old: forbidden, cur: forbidden, want: false},
		{name: "another failure reason is not ours to explain", old: pending, cur: otherFailure, want: false},
		{name: "the reason counts only on a failed pod", old: pending, cur: pendingWithReason, want: false},
		{name: "a running pod is fine", old: pending, cur: running, want: false},
		{name: "no pod", old: nil, cur: nil, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, newlySysctlForbidden(tt.old, tt.cur))
		})
	}
}

func TestSysctlForbiddenMessage(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{
			name: "an IPv4 pod names its sysctl, the node and the flag for both families",
			pod:  makePod("kube-system", "svclb-web-1", "a", withSysctls("net.ipv4.ip_forward"), rejected),
			want: "the kubelet of node a refused the LB pod: the unsafe sysctls net.ipv4.ip_forward are not allowed there; " +
				"start the kubelet with --allowed-unsafe-sysctls=net.ipv4.ip_forward,net.ipv6.conf.all.forwarding",
		},
		{
			name: "a dual-stack pod names both sysctls in its order",
			pod:  makePod("kube-system", "svclb-web-2", "b", withSysctls("net.ipv6.conf.all.forwarding", "net.ipv4.ip_forward"), rejected),
			want: "the kubelet of node b refused the LB pod: the unsafe sysctls net.ipv6.conf.all.forwarding,net.ipv4.ip_forward " +
				"are not allowed there; start the kubelet with --allowed-unsafe-sysctls=net.ipv4.ip_forward,net.ipv6.conf.all.forwarding",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, sysctlForbiddenMessage(tt.pod))
		})
	}
	// The pod's name is not in the message, so one node's replacement pods fold into one Event.
	other := makePod("kube-system", "svclb-web-9", "a", withSysctls("net.ipv4.ip_forward"), rejected)
	assert.Equal(t, sysctlForbiddenMessage(tests[0].pod), sysctlForbiddenMessage(other))
}

// TestSysctlForbiddenWarnsOncePerRejectedPod drives the pod handlers as the informer would and
// checks the Events on the Service: one per rejected pod, none for later updates of it, none
// for pods of Services the controller does not serve.
func TestSysctlForbiddenWarnsOncePerRejectedPod(t *testing.T) {
	svc := makeService()
	classed := makeService(withName("default", "classed"), withUID("c1a55ed0-0000"), func(s *corev1.Service) {
		s.Spec.LoadBalancerClass = new("example.com/other")
	})
	client := fake.NewClientset()
	c, err := New(client, Options{})
	require.NoError(t, err)
	recorder := record.NewFakeRecorder(10)
	c.recorder = recorder
	factory := informers.NewSharedInformerFactory(client, 0)
	for _, s := range []*corev1.Service{svc, classed} {
		require.NoError(t, factory.Core().V1().Services().Informer().GetIndexer().Add(s))
	}
	c.services = factory.Core().V1().Services().Lister()

	lb := func(svc *corev1.Service, name, rv string, tweaks ...podTweak) *corev1.Pod {
		p := makePod("kube-system", name, "a", append([]podTweak{svclbOf(svc), withSysctls("net.ipv4.ip_forward")}, tweaks...)...)
		p.ResourceVersion = rv
		return p
	}
	want := "Warning SysctlForbidden " + sysctlForbiddenMessage(lb(svc, "x", "1", rejected))

	first := lb(svc, "svclb-web-1", "1", phase(corev1.PodPending))
	c.handlePodAdd(first)
	assert.Empty(t, events.Drain(recorder), "a pending pod says nothing")

	failed := lb(svc, "svclb-web-1", "2", rejected)
	c.handlePodUpdate(first, failed)
	assert.Equal(t, []string{want}, events.Drain(recorder), "the rejection is announced")

	again := lb(svc, "svclb-web-1", "3", rejected)
	c.handlePodUpdate(failed, again)
	c.handlePodUpdate(again, again)
	assert.Empty(t, events.Drain(recorder), "later updates of the same rejected pod say nothing more")

	// The DaemonSet controller replaces the pod; the kubelet rejects the new one too.
	c.handlePodDelete(again)
	c.handlePodAdd(lb(svc, "svclb-web-2", "4", rejected))
	assert.Equal(t, []string{want}, events.Drain(recorder), "a new rejected pod is a new failure")

	c.handlePodAdd(lb(classed, "svclb-classed-1", "5", rejected))
	c.handlePodAdd(lb(makeService(withName("default", "gone")), "svclb-gone-1", "6", rejected))
	assert.Empty(t, events.Drain(recorder), "no Event for a Service the controller does not serve or no longer has")
	c.queue.ShutDown()
}
