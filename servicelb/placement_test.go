package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestPlaceLoadBalancer(t *testing.T) {
	web := makeService()
	dns := makeService(withName("default", "dns"), withUID("0b7c1d2e-0000"), withPorts(svcPort("UDP", 53, 30053)))
	other := makeService(withName("apps", "other"), withUID("f00dcafe-0000"))
	tests := []struct {
		name         string
		svc          *corev1.Service
		nodes        []*corev1.Node
		pods         []*corev1.Pod
		tolerations  []corev1.Toleration
		wantEligible []string
		wantRejected map[string]string
	}{
		{
			name:         "with no enablelb label anywhere every node is eligible",
			svc:          web,
			nodes:        []*corev1.Node{makeNode("b"), makeNode("a"), makeNode("c")},
			wantEligible: []string{"a", "b", "c"},
		},
		{
			name:  "one node labelled enablelb=false is enough to switch to allow-list mode",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b", enableLB("false"))},
			wantRejected: map[string]string{
				"a": "not labelled svccontroller.k3s.cattle.io/enablelb=true",
				"b": "not labelled svccontroller.k3s.cattle.io/enablelb=true",
			},
		},
		{
			name:         "in allow-list mode only enablelb=true nodes are eligible",
			svc:          web,
			nodes:        []*corev1.Node{makeNode("a", enableLB("true")), makeNode("b", enableLB("false")), makeNode("c")},
			wantEligible: []string{"a"},
			wantRejected: map[string]string{
				"b": "not labelled svccontroller.k3s.cattle.io/enablelb=true",
				"c": "not labelled svccontroller.k3s.cattle.io/enablelb=true",
			},
		},
		{
			name:         "a node being deleted neither hosts the pod nor keeps allow-list mode on",
			svc:          web,
			nodes:        []*corev1.Node{makeNode("a"), makeNode("b", enableLB("true"), nodeDeleting())},
			wantEligible: []string{"a"},
			wantRejected: map[string]string{"b": "being deleted"},
		},
		{
			name: "in allow-list mode a pooled Service runs on the nodes of its pool, by either pool label",
			svc:  makeService(withPool("edge")),
			nodes: []*corev1.Node{
				makeNode("a", enableLB("true"), nodeLabel(testKeys.LBPool, "edge")),
				makeNode("b", enableLB("true"), nodeLabel("lbpool.svccontroller.k3s.cattle.io/edge", "true")),
				makeNode("c", enableLB("true"), nodeLabel(testKeys.LBPool, "core")),
				makeNode("d", enableLB("true"), nodeLabel("lbpool.svccontroller.k3s.cattle.io/edge", "false")),
				makeNode("e", enableLB("true")),
			},
			wantEligible: []string{"a", "b"},
			wantRejected: map[string]string{"c": "not in lbpool edge", "d": "not in lbpool edge", "e": "not in lbpool edge"},
		},
		{
			name: "without an enablelb node a pooled Service runs on every node, as in K3s",
			svc:  makeService(withPool("edge")),
			nodes: []*corev1.Node{
				makeNode("a", nodeLabel(testKeys.LBPool, "edge")),
				makeNode("b", nodeLabel(testKeys.LBPool, "core")),
				makeNode("c"),
			},
			wantEligible: []string{"a", "b", "c"},
		},
		{
			name: "a node in several pools serves each of them",
			svc:  makeService(withPool("core")),
			nodes: []*corev1.Node{makeNode("multi", enableLB("true"),
				nodeLabel(testKeys.LBPool, "edge"),
				nodeLabel("lbpool.svccontroller.k3s.cattle.io/core", "true"),
				nodeLabel("lbpool.svccontroller.k3s.cattle.io/edge", "true"))},
			wantEligible: []string{"multi"},
		},
		{
			name: "pools and allow-list mode combine",
			svc:  makeService(withPool("edge")),
			nodes: []*corev1.Node{
				makeNode("a", enableLB("true"), nodeLabel(testKeys.LBPool, "edge")),
				makeNode("b", nodeLabel(testKeys.LBPool, "edge")),
				makeNode("c", enableLB("true")),
			},
			wantEligible: []string{"a"},
			wantRejected: map[string]string{
				"b": "not labelled svccontroller.k3s.cattle.io/enablelb=true",
				"c": "not in lbpool edge",
			},
		},
		{
			name: "taints block unless tolerated, and PreferNoSchedule never blocks",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("cp", taint("node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule)),
				makeNode("critical", taint("CriticalAddonsOnly", "true", corev1.TaintEffectNoExecute)),
				makeNode("gpu", taint("gpu", "a100", corev1.TaintEffectNoSchedule)),
				makeNode("db", taint("dedicated", "db", corev1.TaintEffectNoExecute)),
				makeNode("lb", taint("dedicated", "lb", corev1.TaintEffectNoSchedule)),
				makeNode("soft", taint("spot", "", corev1.TaintEffectPreferNoSchedule)),
			},
			tolerations: append(defaultTolerations(),
				corev1.Toleration{Key: "dedicated", Operator: "Equal", Value: "lb"}),
			wantEligible: []string{"cp", "critical", "lb", "soft"},
			wantRejected: map[string]string{
				"gpu": "untolerated taint gpu=a100:NoSchedule",
				"db":  "untolerated taint dedicated=db:NoExecute",
			},
		},
		{
			name: "taints the DaemonSet controller tolerates by itself do not block",
			svc:  web,
			nodes: []*corev1.Node{
				makeNode("cordoned", taint(corev1.TaintNodeUnschedulable, "", corev1.TaintEffectNoSchedule)),
				makeNode("pressure", taint(corev1.TaintNodeMemoryPressure, "", corev1.TaintEffectNoSchedule)),
				makeNode("flaky", taint(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoExecute)),
				makeNode("notready", taint(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoSchedule)),
			},
			tolerations:  defaultTolerations(),
			wantEligible: []string{"cordoned", "flaky", "pressure"},
			wantRejected: map[string]string{"notready": "untolerated taint node.kubernetes.io/not-ready:NoSchedule"},
		},
		{
			name:         "a toleration with an empty key and Exists tolerates any taint",
			svc:          web,
			nodes:        []*corev1.Node{makeNode("a", taint("x", "y", corev1.TaintEffectNoExecute))},
			tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			wantEligible: []string{"a"},
		},
		{
			name:  "a host port held by another pod blocks the node, named by the pod's controller",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b"), makeNode("c")},
			pods: []*corev1.Pod{
				makePod("kube-system", "svclb-other-f00dcafe-x1", "a", svclbOf(other), hostPortOn(80, "TCP")),
				makePod("ingress", "nginx-7d9f8-abcde", "b", ownedBy("nginx-7d9f8"), hostPortOn(80, "TCP")),
			},
			wantEligible: []string{"c"},
			wantRejected: map[string]string{
				"a": "port 80/TCP taken by kube-system/svclb-other-f00dcafe",
				"b": "port 80/TCP taken by ingress/nginx-7d9f8",
			},
		},
		{
			name:  "TCP 53 and UDP 53 are different ports",
			svc:   dns,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b")},
			pods: []*corev1.Pod{
				makePod("kube-system", "tcp-dns", "a", hostPortOn(53, "TCP")),
				makePod("kube-system", "udp-dns", "b", hostPortOn(53, "UDP")),
			},
			wantEligible: []string{"a"},
			wantRejected: map[string]string{"b": "port 53/UDP taken by kube-system/udp-dns"},
		},
		{
			name:  "an SCTP port conflicts with SCTP only",
			svc:   makeService(withPorts(svcPort("SCTP", 9999, 0))),
			nodes: []*corev1.Node{makeNode("a"), makeNode("b")},
			pods: []*corev1.Pod{
				makePod("telco", "sctp", "a", hostPortOn(9999, "SCTP")),
				makePod("telco", "tcp", "b", hostPortOn(9999, "TCP")),
			},
			wantEligible: []string{"b"},
			wantRejected: map[string]string{"a": "port 9999/SCTP taken by telco/sctp"},
		},
		{
			name:  "a hostNetwork pod holds the ports its containers declare",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b")},
			pods: []*corev1.Pod{
				makePod("monitoring", "exporter", "a", hostNetworkPort(80, "")),
				makePod("default", "plain", "b", containerPort(80)),
			},
			wantEligible: []string{"b"},
			wantRejected: map[string]string{"a": "port 80/TCP taken by monitoring/exporter"},
		},
		{
			name:  "a sidecar holds its host port, a plain init container does not",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b")},
			pods: []*corev1.Pod{
				makePod("default", "with-sidecar", "a", initContainerPort(80, new(corev1.ContainerRestartPolicyAlways))),
				makePod("default", "with-init", "b", initContainerPort(80, nil)),
			},
			wantEligible: []string{"b"},
			wantRejected: map[string]string{"a": "port 80/TCP taken by default/with-sidecar"},
		},
		{
			name:  "the Service's own LB pods do not conflict with it, even next to a conflicting pod",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b")},
			pods: []*corev1.Pod{
				makePod("kube-system", "svclb-web-35a5ccb3-aaaaa", "a", svclbOf(web), hostPortOn(80, "TCP")),
				makePod("kube-system", "svclb-web-35a5ccb3-bbbbb", "b", svclbOf(web), hostPortOn(80, "TCP")),
				makePod("default", "web-old", "b", hostPortOn(80, "TCP")),
			},
			wantEligible: []string{"a"},
			wantRejected: map[string]string{"b": "port 80/TCP taken by default/web-old"},
		},
		{
			name:  "a same-named Service in another namespace does conflict",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a")},
			pods: []*corev1.Pod{makePod("kube-system", "svclb-web-x", "a", hostPortOn(80, "TCP"),
				svclbOf(makeService(withName("staging", "web"))))},
			wantRejected: map[string]string{"a": "port 80/TCP taken by kube-system/svclb-web-35a5ccb3"},
		},
		{
			name:  "finished and unscheduled pods hold no port",
			svc:   web,
			nodes: []*corev1.Node{makeNode("a"), makeNode("b")},
			pods: []*corev1.Pod{
				makePod("default", "done", "a", hostPortOn(80, "TCP"), phase(corev1.PodSucceeded)),
				makePod("default", "crashed", "b", hostPortOn(80, "TCP"), phase(corev1.PodFailed)),
				makePod("default", "pending", "", hostPortOn(80, "TCP")),
			},
			wantEligible: []string{"a", "b"},
		},
		{
			name:  "the first failing rule is the one reported",
			svc:   makeService(withPool("edge")),
			nodes: []*corev1.Node{makeNode("a", enableLB("false"), taint("x", "", corev1.TaintEffectNoSchedule))},
			pods:  []*corev1.Pod{makePod("default", "p", "a", hostPortOn(80, "TCP"))},
			wantRejected: map[string]string{
				"a": "not labelled svccontroller.k3s.cattle.io/enablelb=true",
			},
		},
		{
			name:         "an empty cluster has no eligible node",
			svc:          web,
			wantRejected: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := placeLoadBalancer(tt.svc, tt.nodes, tt.tolerations, indexHostPorts(tt.pods, testKeys), testKeys)
			rejected := map[string]string{}
			for _, r := range got.rejected {
				rejected[r.node] = r.String()
			}
			want := tt.wantRejected
			if want == nil {
				want = map[string]string{}
			}
			assert.Equal(t, tt.wantEligible, got.eligible)
			assert.Equal(t, want, rejected)
			assert.IsNonDecreasing(t, nodeNames(got.rejected), "rejections are sorted by node")
		})
	}
}

func nodeNames(rs []rejection) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.node
	}
	return out
}

func TestPlaceLoadBalancerKeepsStructuredReasons(t *testing.T) {
	other := makeService(withName("apps", "other"))
	got := placeLoadBalancer(makeService(withPorts(svcPort("UDP", 53, 0), svcPort("TCP", 443, 0))),
		[]*corev1.Node{makeNode("a")}, nil,
		indexHostPorts([]*corev1.Pod{
			makePod("kube-system", "svclb-z", "a", svclbOf(other), hostPortOn(443, "TCP")),
			makePod("kube-system", "svclb-y", "a", svclbOf(other), hostPortOn(443, "TCP")),
		}, testKeys), testKeys)

	assert.Equal(t, []rejection{{
		node:   "a",
		kind:   rejectPortTaken,
		port:   newHostPort(443, corev1.ProtocolTCP),
		holder: &portHolder{pod: "kube-system/svclb-y", owner: "kube-system/svclb-other-35a5ccb3", svcName: "other", svcNamespace: "apps"},
	}}, got.rejected, "the holder is the first pod by name, whatever the listing order")
}

func TestPlacementString(t *testing.T) {
	portTaken := func(node string, port int32, owner string) rejection {
		return rejection{node: node, kind: rejectPortTaken, port: newHostPort(port, corev1.ProtocolTCP),
			holder: &portHolder{pod: owner + "-" + node, owner: owner}}
	}
	notAllowed := func(node string) rejection {
		return rejection{node: node, kind: rejectNotAllowListed, arg: testKeys.EnableLB}
	}
	tests := []struct {
		name string
		p    placement
		want string
	}{
		{
			name: "a cluster without nodes says so",
			want: "no node can host the load balancer: the cluster has no nodes",
		},
		{
			name: "when every node is eligible only the count is given",
			p:    placement{eligible: []string{"a", "b"}},
			want: "2 of 2 nodes can host the load balancer",
		},
		{
			name: "nodes failing the same way are counted under one reason, most frequent first",
			p: placement{rejected: []rejection{
				notAllowed("a"),
				portTaken("b", 443, "kube-system/svclb-a-1234"),
				portTaken("c", 443, "kube-system/svclb-a-1234"),
				portTaken("d", 443, "kube-system/svclb-a-1234"),
			}},
			want: "no node can host the load balancer: 3 nodes: port 443/TCP taken by kube-system/svclb-a-1234; " +
				"1 node: not labelled svccontroller.k3s.cattle.io/enablelb=true",
		},
		{
			name: "some eligible nodes are counted before the reasons for the others",
			p: placement{eligible: []string{"a"}, rejected: []rejection{
				{node: "b", kind: rejectTaint, taint: &corev1.Taint{Key: "dedicated", Value: "db", Effect: "NoSchedule"}},
			}},
			want: "1 of 2 nodes can host the load balancer; 1 node: untolerated taint dedicated=db:NoSchedule",
		},
		{
			name: "beyond three reasons the remaining nodes are only counted",
			p: placement{rejected: []rejection{
				portTaken("a", 80, "x/a"), portTaken("b", 80, "x/a"),
				portTaken("c", 80, "x/b"), portTaken("d", 80, "x/c"), portTaken("e", 80, "x/d"),
				{node: "f", kind: rejectDeleting}, {node: "g", kind: rejectOtherPool, arg: "edge"},
			}},
			want: "no node can host the load balancer: 2 nodes: port 80/TCP taken by x/a; 1 node: being deleted; " +
				"1 node: not in lbpool edge; 3 nodes for other reasons",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.p.String())
		})
	}
}

func TestServicePool(t *testing.T) {
	tests := []struct {
		name      string
		svc       *corev1.Service
		allowList bool
		want      string
	}{
		{name: "in allow-list mode the Service's lbpool label is its pool", svc: makeService(withPool("pool1")), allowList: true, want: "pool1"},
		{name: "outside allow-list mode a pool label restricts nothing", svc: makeService(withPool("pool1")), allowList: false, want: ""},
		{name: "a Service without the label has no pool in allow-list mode", svc: makeService(), allowList: true, want: ""},
		{name: "an empty label is no pool", svc: makeService(withPool("")), allowList: true, want: ""},
		{name: "the RKE2 label does not count for K3s", svc: makeService(withLabel("svccontroller.rke2.cattle.io/lbpool", "pool1")), allowList: true, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, servicePool(tt.svc, tt.allowList, testKeys))
		})
	}
}

func TestAllowListMode(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*corev1.Node
		want  bool
	}{
		{name: "no nodes means no allow-list", want: false},
		{name: "unlabelled nodes mean no allow-list", nodes: []*corev1.Node{makeNode("a")}, want: false},
		{name: "a false label still switches it on", nodes: []*corev1.Node{makeNode("a"), makeNode("b", enableLB("false"))}, want: true},
		{name: "an empty value switches it on", nodes: []*corev1.Node{makeNode("a", enableLB(""))}, want: true},
		{name: "a label on a deleting node does not count", nodes: []*corev1.Node{makeNode("a", enableLB("true"), nodeDeleting())}, want: false},
		{name: "the RKE2 key does not count for K3s", nodes: []*corev1.Node{makeNode("a", nodeLabel("svccontroller.rke2.cattle.io/enablelb", "true"))}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, allowListMode(tt.nodes, testKeys))
		})
	}
}
