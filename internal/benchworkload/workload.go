// Package benchworkload generates the NetworkPolicy workload of record, at any scale: nodes
// node-0.. (node-0 is the node under test), namespaces labelled team/env, pods with named
// container ports spread over the nodes (the local ones on node-0, bound by spec.nodeName) and
// policies mixing pod selectors, namespace selectors (labels and expressions), ipBlocks with
// except, named ports, port ranges, two-way policies and allow-all rules. netpol's benchmarks
// compile it in memory; bench/netpol-workload prints it for kubectl. Deterministic: the same
// Size gives the same objects.
package benchworkload

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k3snet/k3snet/netpol/netpoltest"
)

// Size is a workload's shape: Local of the Pods are on node-0, the others spread over the
// other Nodes (Nodes must be at least 2 when Pods > Local).
type Size struct {
	Nodes, Namespaces, Pods, Local, Policies int
}

// Record is the workload of record: 50 nodes, 100 namespaces, 5,000 pods of which 100 on
// node-0, 1,000 policies.
func Record() Size { return Size{Nodes: 50, Namespaces: 100, Pods: 5000, Local: 100, Policies: 1000} }

// Scaled is s with every count multiplied by n.
func (s Size) Scaled(n int) Size {
	return Size{Nodes: s.Nodes * n, Namespaces: s.Namespaces * n, Pods: s.Pods * n, Local: s.Local * n, Policies: s.Policies * n}
}

// Workload is the generated API objects. Pods carry phase Running and an address inside
// their node's pod CIDR (pod i of node n: PodIP(n, i)); through the API server the cluster
// assigns addresses instead.
type Workload struct {
	Namespaces []*corev1.Namespace
	Pods       []*corev1.Pod
	Policies   []*networkingv1.NetworkPolicy
}

// Generate builds the namespaces, pods and policies of s.
func Generate(s Size) Workload {
	var w Workload
	for i := range s.Namespaces {
		w.Namespaces = append(w.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("ns-%d", i),
			Labels: map[string]string{"team": fmt.Sprintf("t%d", i%7), "env": []string{"prod", "dev", "test"}[i%3]},
		}})
	}
	perNode := make([]int, s.Nodes)
	for p := range s.Pods {
		node := 0
		if p >= s.Local {
			node = 1 + p%(s.Nodes-1) // the remote nodes 1..Nodes-1 in turn
		}
		ip := s.PodIP(node, perNode[node])
		perNode[node]++
		w.Pods = append(w.Pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", p), Namespace: fmt.Sprintf("ns-%d", p%s.Namespaces),
				Labels: map[string]string{"app": fmt.Sprintf("a%d", p%10), "tier": []string{"web", "api", "db", "cache"}[p%4]}},
			Spec: corev1.PodSpec{NodeName: NodeName(node), Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
			}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
		})
	}
	for q := range s.Policies {
		w.Policies = append(w.Policies, policy(q, s.Namespaces))
	}
	return w
}

// policy is the q-th policy: one of five ingress kinds by q%5, two-way every third.
func policy(q, namespaces int) *networkingv1.NetworkPolicy {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	var rule networkingv1.NetworkPolicyIngressRule
	switch q % 5 {
	case 0:
		rule = netpoltest.From(netpoltest.Peers(netpoltest.PodPeer(netpoltest.LabelsSel("tier", "web"))), netpoltest.ProtoPort(tcp, 8080))
	case 1:
		named := intstr.FromString("http")
		rule = netpoltest.From(netpoltest.Peers(netpoltest.PodNSPeer(netpoltest.LabelsSel("app", fmt.Sprintf("a%d", q%10)), netpoltest.LabelsSel("team", fmt.Sprintf("t%d", q%7)))),
			networkingv1.NetworkPolicyPort{Port: &named, Protocol: &tcp})
	case 2:
		rule = netpoltest.From(netpoltest.Peers(netpoltest.CIDRPeer("10.0.0.0/8", fmt.Sprintf("10.42.%d.0/24", q%50))), netpoltest.PortRange(tcp, 9000, 9100))
	case 3:
		rule = netpoltest.From(netpoltest.Peers(netpoltest.NSPeer(netpoltest.ExprSel("env", metav1.LabelSelectorOpIn, "prod"))))
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pol-%d", q), Namespace: fmt.Sprintf("ns-%d", q%namespaces)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *netpoltest.LabelsSel("app", fmt.Sprintf("a%d", q%10)),
			PolicyTypes: []networkingv1.PolicyType{netpoltest.TypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{rule},
		},
	}
	if q%3 == 0 {
		np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, netpoltest.TypeEgress)
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{
			netpoltest.To(netpoltest.Peers(netpoltest.PodPeer(netpoltest.LabelsSel("tier", "db"))), netpoltest.ProtoPort(tcp, 5432)),
			netpoltest.To(nil, netpoltest.ProtoPort(udp, 53)),
		}
	}
	return np
}

// Pod returns a copy of template named name with address ip: a pod that starts.
func Pod(template *corev1.Pod, name, ip string) *corev1.Pod {
	pod := template.DeepCopy()
	pod.Name, pod.Status.PodIP, pod.Status.PodIPs = name, ip, []corev1.PodIP{{IP: ip}}
	return pod
}
