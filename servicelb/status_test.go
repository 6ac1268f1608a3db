package servicelb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// vip and proxy are ingress entries with an explicit ipMode.
func vip(ips ...string) []corev1.LoadBalancerIngress {
	return ingressWith(corev1.LoadBalancerIPModeVIP, ips...)
}

func proxy(ips ...string) []corev1.LoadBalancerIngress {
	return ingressWith(corev1.LoadBalancerIPModeProxy, ips...)
}

func ingressWith(mode corev1.LoadBalancerIPMode, ips ...string) []corev1.LoadBalancerIngress {
	out := make([]corev1.LoadBalancerIngress, len(ips))
	for i, ip := range ips {
		out[i] = corev1.LoadBalancerIngress{IP: ip, IPMode: new(mode)}
	}
	return out
}

func TestLoadBalancerIngress(t *testing.T) {
	web := makeService()
	local := makeService(withLocal())
	dual := makeService(withStack("10.43.0.10", "fd00:43::10"))
	tests := []struct {
		name        string
		svc         *corev1.Service
		nodes       []*corev1.Node
		pods        []*corev1.Pod
		slices      []*discoveryv1.EndpointSlice
		defaultMode corev1.LoadBalancerIPMode
		want        []corev1.LoadBalancerIngress
	}{
		{
			name:  "nodes without external IPs publish their internal IPs",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a", internalIP("10.0.0.1")), makeNode("b", internalIP("10.0.0.2"))},
			pods:  []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5")},
			want:  vip("10.0.0.1", "10.0.0.2"),
		},
		{
			name: "external IPs replace internal ones",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1"), externalIP("203.0.113.1")),
				makeNode("b", internalIP("10.0.0.2"), externalIP("203.0.113.2")),
			},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5")},
			want: vip("203.0.113.1", "203.0.113.2"),
		},
		{
			name: "each node is published by its external IP if it has one, else its internal IP, as the K3s docs say",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1"), externalIP("203.0.113.1")),
				makeNode("b", internalIP("10.0.0.2")),
			},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5")},
			want: vip("10.0.0.2", "203.0.113.1"),
		},
		{
			name: "an unusable external IP is skipped and hides neither its node nor the others",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1"), externalIP("0.0.0.0")),
				makeNode("b", internalIP("10.0.0.2")),
				makeNode("c", internalIP("10.0.0.3")),
			},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5"), lbPod(web, "c", "10.42.2.5")},
			want: vip("10.0.0.1", "10.0.0.2", "10.0.0.3"),
		},
		{
			name: "loopback, multicast, link-local and zoned addresses are never published",
			svc:  dual,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("127.0.0.1", "::1", "10.0.0.1"), externalIP("224.0.0.1", "ff02::1", "fe80::1%eth0")),
				makeNode("b", internalIP("169.254.0.1", "fe80::1", "255.255.255.255")),
			},
			pods: []*corev1.Pod{lbPod(dual, "a", "10.42.0.5"), lbPod(dual, "b", "10.42.1.5")},
			want: vip("10.0.0.1"),
		},
		{
			name: "a dual-stack node with an IPv4 external IP keeps its IPv6 internal IP",
			svc:  dual,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1", "fd00::1"), externalIP("203.0.113.1")),
			},
			pods: []*corev1.Pod{lbPod(dual, "a", "10.42.0.5")},
			want: vip("203.0.113.1", "fd00::1"),
		},
		{
			name: "an external IP of a family the Service lacks does not hide internal IPs",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1"), externalIP("2001:db8::1")),
				makeNode("b", internalIP("10.0.0.2")),
			},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5")},
			want: vip("10.0.0.1", "10.0.0.2"),
		},
		{
			name: "addresses are sorted numerically, not as text",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.10")), makeNode("b", internalIP("10.0.0.9")),
				makeNode("c", internalIP("9.0.0.1")),
			},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5"), lbPod(web, "c", "10.42.2.5")},
			want: vip("9.0.0.1", "10.0.0.9", "10.0.0.10"),
		},
		{
			name: "an IPv4 Service drops the nodes' IPv6 addresses and ignores hostnames",
			svc:  web,
			nodes: []*corev1.Node{makeNode("a", internalIP("fd00::1", "10.0.0.1"),
				addresses(corev1.NodeHostName, "a.example"), addresses(corev1.NodeInternalDNS, "a.internal"))},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5")},
			want: vip("10.0.0.1"),
		},
		{
			name: "a dual-stack Service lists its families in order, each sorted",
			svc:  makeService(withStack("fd00:43::10", "10.43.0.10")),
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.2", "fd00::2")),
				makeNode("b", internalIP("10.0.0.1", "fd00::10")),
			},
			pods: []*corev1.Pod{lbPod(dual, "a", "10.42.0.5"), lbPod(dual, "b", "10.42.1.5")},
			want: vip("fd00::2", "fd00::10", "10.0.0.1", "10.0.0.2"),
		},
		{
			name: "an IPv6-only Service publishes IPv6 addresses only",
			svc:  makeService(withStack("fd00:43::10")),
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1", "fd00::1")),
			},
			pods: []*corev1.Pod{lbPod(web, "a", "fd00:42::5")},
			want: vip("fd00::1"),
		},
		{
			name:  "two nodes sharing an address, or two pods on one node, publish it once",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a", externalIP("203.0.113.1")), makeNode("b", externalIP("203.0.113.1"))},
			pods: []*corev1.Pod{lbPod(web, "a", "10.42.0.5"), lbPod(web, "b", "10.42.1.5"),
				makePod("kube-system", "svclb-a-new", "a", svclbOf(web), ready("10.42.0.6", corev1.ConditionTrue))},
			want: vip("203.0.113.1"),
		},
		{
			name: "pods that are not ready, unbound, without IP, on unknown or deleting nodes are ignored",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("ok", internalIP("10.0.0.1")), makeNode("notready", internalIP("10.0.0.2")),
				makeNode("noip", internalIP("10.0.0.3")), makeNode("nocond", internalIP("10.0.0.4")),
				makeNode("gone", internalIP("10.0.0.5"), nodeDeleting()),
			},
			pods: []*corev1.Pod{
				lbPod(web, "ok", "10.42.0.5"),
				makePod("kube-system", "svclb-notready", "notready", svclbOf(web), ready("10.42.1.5", corev1.ConditionFalse)),
				makePod("kube-system", "svclb-noip", "noip", svclbOf(web), ready("", corev1.ConditionTrue)),
				makePod("kube-system", "svclb-nocond", "nocond", svclbOf(web), func(p *corev1.Pod) { p.Status.PodIP = "10.42.3.5" }),
				makePod("kube-system", "svclb-pending", "", svclbOf(web), ready("10.42.4.5", corev1.ConditionTrue)),
				lbPod(web, "unknown", "10.42.5.5"),
				lbPod(web, "gone", "10.42.6.5"),
			},
			want: vip("10.0.0.1"),
		},
		{
			name:  "without ready pods the list is empty",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			want:  nil,
		},
		{
			name: "ETP Local publishes only nodes with a ready local Pod endpoint",
			svc:  local,
			nodes: []*corev1.Node{
				makeNode("a", internalIP("10.0.0.1")), makeNode("b", internalIP("10.0.0.2")),
				makeNode("c", internalIP("10.0.0.3")), makeNode("d", internalIP("10.0.0.4")),
				makeNode("e", internalIP("10.0.0.5")), makeNode("f", internalIP("10.0.0.6")),
			},
			pods: []*corev1.Pod{lbPod(local, "a", "10.42.0.5"), lbPod(local, "b", "10.42.1.5"),
				lbPod(local, "c", "10.42.2.5"), lbPod(local, "d", "10.42.3.5"), lbPod(local, "e", "10.42.4.5"),
				lbPod(local, "f", "10.42.5.5")},
			slices: []*discoveryv1.EndpointSlice{
				makeSlice("default", "web",
					endpoint("a", new(true), "Pod"),
					endpoint("b", new(false), "Pod"),
					endpoint("c", nil, "Pod"),
					endpoint("d", new(true), "Node")),
				makeSlice("default", "other", endpoint("e", new(true), "Pod")),
				makeSlice("staging", "web", endpoint("f", new(true), "Pod")),
			},
			want: vip("10.0.0.1", "10.0.0.3"),
		},
		{
			name:  "ETP Local without endpoints publishes nothing",
			svc:   local,
			nodes: []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			pods:  []*corev1.Pod{lbPod(local, "a", "10.42.0.5")},
			want:  nil,
		},
		{
			name:   "ETP Cluster ignores endpoints",
			svc:    web,
			nodes:  []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			pods:   []*corev1.Pod{lbPod(web, "a", "10.42.0.5")},
			slices: []*discoveryv1.EndpointSlice{makeSlice("default", "web", endpoint("b", new(true), "Pod"))},
			want:   vip("10.0.0.1"),
		},
		{
			name:        "the controller default can be Proxy",
			svc:         web,
			nodes:       []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			pods:        []*corev1.Pod{lbPod(web, "a", "10.42.0.5")},
			defaultMode: corev1.LoadBalancerIPModeProxy,
			want:        proxy("10.0.0.1"),
		},
		{
			name:  "the ipmode annotation asks for Proxy in any case",
			svc:   makeService(withAnnotation(testKeys.IPMode, " Proxy ")),
			nodes: []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			pods:  []*corev1.Pod{lbPod(web, "a", "10.42.0.5")},
			want:  proxy("10.0.0.1"),
		},
		{
			name:        "the ipmode annotation can ask for VIP against a Proxy default",
			svc:         makeService(withAnnotation(testKeys.IPMode, "vip")),
			nodes:       []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			pods:        []*corev1.Pod{lbPod(web, "a", "10.42.0.5")},
			defaultMode: corev1.LoadBalancerIPModeProxy,
			want:        vip("10.0.0.1"),
		},
		{
			name:  "an unknown ipmode value falls back to the default",
			svc:   makeService(withAnnotation(testKeys.IPMode, "direct")),
			nodes: []*corev1.Node{makeNode("a", internalIP("10.0.0.1"))},
			pods:  []*corev1.Pod{lbPod(web, "a", "10.42.0.5")},
			want:  vip("10.0.0.1"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadBalancerIngress(tt.svc, tt.pods, nodeMap(tt.nodes...), tt.slices, tt.defaultMode, testKeys)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestIngressEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b []corev1.LoadBalancerIngress
		want bool
	}{
		{name: "nil and empty are equal", a: nil, b: []corev1.LoadBalancerIngress{}, want: true},
		{name: "ipMode is compared by value, not pointer", a: vip("10.0.0.1"), b: vip("10.0.0.1"), want: true},
		{name: "VIP and Proxy differ", a: vip("10.0.0.1"), b: proxy("10.0.0.1"), want: false},
		{
			name: "an unset ipMode next to an IP is the API default VIP",
			a:    vip("10.0.0.1"),
			b:    []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}},
			want: true,
		},
		{
			name: "an unset ipMode is not Proxy",
			a:    proxy("10.0.0.1"),
			b:    []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}},
			want: false,
		},
		{name: "order matters", a: vip("10.0.0.1", "10.0.0.2"), b: vip("10.0.0.2", "10.0.0.1"), want: false},
		{name: "length matters", a: vip("10.0.0.1"), b: vip("10.0.0.1", "10.0.0.2"), want: false},
		{
			name: "hostnames are compared",
			a:    []corev1.LoadBalancerIngress{{Hostname: "a.example"}},
			b:    []corev1.LoadBalancerIngress{{Hostname: "b.example"}},
			want: false,
		},
		{
			name: "port status is compared by value",
			a:    []corev1.LoadBalancerIngress{{IP: "10.0.0.1", Ports: []corev1.PortStatus{{Port: 80, Protocol: "TCP", Error: new("x")}}}},
			b:    []corev1.LoadBalancerIngress{{IP: "10.0.0.1", Ports: []corev1.PortStatus{{Port: 80, Protocol: "TCP", Error: new("x")}}}},
			want: true,
		},
		{
			name: "a port status error differs from none",
			a:    []corev1.LoadBalancerIngress{{IP: "10.0.0.1", Ports: []corev1.PortStatus{{Port: 80, Protocol: "TCP", Error: new("x")}}}},
			b:    []corev1.LoadBalancerIngress{{IP: "10.0.0.1", Ports: []corev1.PortStatus{{Port: 80, Protocol: "TCP"}}}},
			want: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ingressEqual(tt.a, tt.b))
			assert.Equal(t, tt.want, ingressEqual(tt.b, tt.a), "equality is symmetric")
		})
	}
}

func TestIngressEvent(t *testing.T) {
	tests := []struct {
		name       string
		old, new   []corev1.LoadBalancerIngress
		wantType   string
		wantReason string
		wantMsg    string
	}{
		{
			name:       "new addresses are announced with the old ones, as K3s words it",
			old:        vip("10.0.0.1"),
			new:        vip("10.0.0.1", "10.0.0.2"),
			wantType:   corev1.EventTypeNormal,
			wantReason: "UpdatedLoadBalancer",
			wantMsg:    "Updated LoadBalancer with new IPs: [10.0.0.1] -> [10.0.0.1 10.0.0.2]",
		},
		{
			name:       "a hostname stands in for a missing IP",
			old:        []corev1.LoadBalancerIngress{{Hostname: "lb.example"}},
			new:        vip("10.0.0.1"),
			wantType:   corev1.EventTypeNormal,
			wantReason: "UpdatedLoadBalancer",
			wantMsg:    "Updated LoadBalancer with new IPs: [lb.example] -> [10.0.0.1]",
		},
		{
			name:       "an ipMode change on the same addresses names the ipModes, not the same list twice",
			old:        vip("10.0.0.1", "fd00::1"),
			new:        proxy("10.0.0.1", "fd00::1"),
			wantType:   corev1.EventTypeNormal,
			wantReason: "UpdatedLoadBalancer",
			wantMsg:    "Updated LoadBalancer IPs [10.0.0.1 fd00::1] with new ipMode: VIP -> Proxy",
		},
		{
			name:       "an unset ipMode reads as VIP, the API server's default",
			old:        []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}},
			new:        proxy("10.0.0.1"),
			wantType:   corev1.EventTypeNormal,
			wantReason: "UpdatedLoadBalancer",
			wantMsg:    "Updated LoadBalancer IPs [10.0.0.1] with new ipMode: VIP -> Proxy",
		},
		{
			name:       "an empty list is a warning",
			old:        vip("10.0.0.1"),
			wantType:   corev1.EventTypeWarning,
			wantReason: "UnAvailableLoadBalancer",
			wantMsg:    "There are no available nodes for LoadBalancer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, reason, msg := ingressEvent(tt.old, tt.new)
			assert.Equal(t, tt.wantType, typ)
			assert.Equal(t, tt.wantReason, reason)
			assert.Equal(t, tt.wantMsg, msg)
		})
	}
}

func TestIngressGrows(t *testing.T) {
	tests := []struct {
		name         string
		old, updated []corev1.LoadBalancerIngress
		want         bool
	}{
		{name: "a first address is growth", old: nil, updated: vip("10.0.0.1"), want: true},
		{name: "an added address is growth", old: vip("10.0.0.1"), updated: vip("10.0.0.1", "10.0.0.2"), want: true},
		{name: "a removed address is not", old: vip("10.0.0.1", "10.0.0.2"), updated: vip("10.0.0.1"), want: false},
		{name: "a replaced address is not, even with one more", old: vip("10.0.0.1"), updated: vip("10.0.0.2", "10.0.0.3"), want: false},
		{name: "the same addresses are not", old: vip("10.0.0.1"), updated: proxy("10.0.0.1"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ingressGrows(tt.old, tt.updated))
		})
	}
}

func TestPodsSettling(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	const window, bound = 5 * time.Second, 15 * time.Second
	created := func(ago time.Duration) podTweak {
		return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-ago)) }
	}
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = new(metav1.NewTime(now)) }
	unscheduled := func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodPending }
	pod := func(tweaks ...podTweak) *corev1.Pod { return makePod("kube-system", "svclb", "a", tweaks...) }
	tests := []struct {
		name string
		pods []*corev1.Pod
		want time.Duration
	}{
		{name: "no pods wait for nothing", want: 0},
		{name: "ready pods wait for nothing", pods: []*corev1.Pod{pod(created(time.Second), ready("10.42.0.1", corev1.ConditionTrue))}, want: 0},
		{name: "a young unscheduled pod is waited for until it is window old",
			pods: []*corev1.Pod{pod(created(time.Second), unscheduled), pod(created(3*time.Second), unscheduled)}, want: 4 * time.Second},
		{name: "an unscheduled pod older than window is taken to be stuck", pods: []*corev1.Pod{pod(created(window), unscheduled)}, want: 0},
		{name: "a pod on a node is waited for until it is bound old",
			pods: []*corev1.Pod{pod(created(window)), pod(created(time.Second), unscheduled)}, want: bound - window},
		{name: "a pod on a node older than bound is not waited for", pods: []*corev1.Pod{pod(created(bound))}, want: 0},
		{name: "a deleting pod is not waited for", pods: []*corev1.Pod{pod(created(time.Second), deleting)}, want: 0},
		{name: "a failed pod is not waited for", pods: []*corev1.Pod{pod(created(time.Second), phase(corev1.PodFailed))}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, podsSettling(tt.pods, now, window, bound))
		})
	}
}

func TestDaemonSetFilling(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	const window = 5 * time.Second
	ds := func(created time.Duration, generation, observed int64, desired int32) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{}
		d.CreationTimestamp = metav1.NewTime(now.Add(-created))
		d.Generation, d.Status.ObservedGeneration, d.Status.DesiredNumberScheduled = generation, observed, desired
		return d
	}
	pod := func(ago time.Duration, tweaks ...podTweak) *corev1.Pod {
		p := makePod("kube-system", "svclb", "a", tweaks...)
		p.CreationTimestamp = metav1.NewTime(now.Add(-ago))
		return p
	}
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = new(metav1.NewTime(now)) }
	tests := []struct {
		name string
		ds   *appsv1.DaemonSet
		pods []*corev1.Pod
		want time.Duration
	}{
		{name: "every desired pod exists", ds: ds(time.Minute, 1, 1, 2),
			pods: []*corev1.Pod{pod(time.Second), pod(2 * time.Second)}, want: 0},
		{name: "pods to come wait for window after the newest pod", ds: ds(time.Minute, 1, 1, 3),
			pods: []*corev1.Pod{pod(time.Second), pod(3 * time.Second)}, want: 4 * time.Second},
		{name: "before any pod, window after the DaemonSet's creation", ds: ds(2*time.Second, 1, 1, 3), want: 3 * time.Second},
		{name: "a controller that stopped creating is not waited for", ds: ds(time.Minute, 1, 1, 3),
			pods: []*corev1.Pod{pod(window)}, want: 0},
		{name: "a deleting pod is one to come", ds: ds(time.Minute, 1, 1, 2),
			pods: []*corev1.Pod{pod(time.Second), pod(time.Second, deleting)}, want: 4 * time.Second},
		{name: "a status for an older spec says nothing", ds: ds(time.Second, 2, 1, 3), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, daemonSetFilling(tt.ds, tt.pods, now, window))
		})
	}
}
