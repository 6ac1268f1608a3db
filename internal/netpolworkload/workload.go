// Package netpolworkload builds the NetworkPolicy workload of record as API objects: what
// bench/netpol-workload.py emits for `nodes namespaces pods local policies` (the workload of
// record is 50 100 5000 100 1000), so the compile benchmarks and the benchmarks against a real
// API server load the same cluster. It follows the script line by line: the same names,
// labels, node placement, container ports and the five policy kinds with their selectors,
// ipBlocks and ports. The script leaves pod IPs to the cluster; here pod i of node n gets
// 10.42.n.(i+2), inside node n's pod CIDR.
package netpolworkload

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Workload is the shape of one workload: Local of the Pods run on node 0, the others spread
// over the remaining Nodes.
type Workload struct {
	Nodes, Namespaces, Pods, Local, Policies int
	// LocalNode names node 0, the node whose pods are local; empty means NodeName(0). A
	// benchmark names its own node here, to load the workload around it.
	LocalNode string
}

// OfRecord is the workload of record scaled by factor: 50 nodes, 100 namespaces, 5,000 pods
// (100 on node 0) and 1,000 policies at 1.
func OfRecord(factor int) Workload {
	return Workload{Nodes: 50 * factor, Namespaces: 100 * factor, Pods: 5000 * factor, Local: 100 * factor, Policies: 1000 * factor}
}

// NodeName is the name of node i.
func NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// nodeName is the name of node i of w.
func (w Workload) nodeName(i int) string {
	if i == 0 && w.LocalNode != "" {
		return w.LocalNode
	}
	return NodeName(i)
}

// Scaled reports whether the workload outgrows 10.42.<node>.0/24 per node (more than 256 nodes
// or 253 local pods, as the 10× and 100× workloads do).
func (w Workload) Scaled() bool { return w.Nodes > 256 || w.Local > 253 }

// PodCIDR is node 0's pod CIDR.
func (w Workload) PodCIDR() netip.Prefix {
	if w.Scaled() {
		return netip.MustParsePrefix("10.0.0.0/18")
	}
	return netip.MustParsePrefix("10.42.0.0/24")
}

// PodIP is the address of the i-th pod of node: 10.42.<node>.<i+2> in the workload of record;
// scaled up, node 0's pods come from 10.0.0.0/18 and each other node has a /24 of 10.64.0.0/10.
func (w Workload) PodIP(node, i int) string {
	if !w.Scaled() {
		return fmt.Sprintf("10.42.%d.%d", node, i+2)
	}
	a := uint32(0x0A000000) + uint32(i) + 2
	if node > 0 {
		a = 0x0A400000 + uint32(node)<<8 + uint32(i) + 2
	}
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
}

// NamespaceObjects are the workload's Namespaces, labelled by team and env.
func (w Workload) NamespaceObjects() []*corev1.Namespace {
	out := make([]*corev1.Namespace, 0, w.Namespaces)
	for i := range w.Namespaces {
		out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("ns-%d", i),
			Labels: map[string]string{"team": fmt.Sprintf("t%d", i%7), "env": []string{"prod", "dev", "test"}[i%3]},
		}})
	}
	return out
}

// PodObjects are the workload's Pods, Running with their addresses.
func (w Workload) PodObjects() []*corev1.Pod {
	out := make([]*corev1.Pod, 0, w.Pods)
	perNode := make([]int, w.Nodes)
	for p := range w.Pods {
		node := 0
		if p >= w.Local {
			node = 1 + p%(w.Nodes-1) // remote[p % len(remote)] with remote = 1..nodes-1
		}
		ip := w.PodIP(node, perNode[node])
		perNode[node]++
		out = append(out, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", p), Namespace: fmt.Sprintf("ns-%d", p%w.Namespaces),
				Labels: map[string]string{"app": fmt.Sprintf("a%d", p%10), "tier": []string{"web", "api", "db", "cache"}[p%4]}},
			Spec: corev1.PodSpec{NodeName: w.nodeName(node), Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10",
				Ports: []corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
				}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
		})
	}
	return out
}

// PolicyObjects are the workload's NetworkPolicies, the script's five kinds in turn.
func (w Workload) PolicyObjects() []*networkingv1.NetworkPolicy {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	out := make([]*networkingv1.NetworkPolicy, 0, w.Policies)
	for q := range w.Policies {
		var rule networkingv1.NetworkPolicyIngressRule
		switch q % 5 {
		case 0:
			rule = networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{PodSelector: labels("tier", "web")}},
				Ports: []networkingv1.NetworkPolicyPort{port(&tcp, 8080)}}
		case 1:
			named := intstr.FromString("http")
			rule = networkingv1.NetworkPolicyIngressRule{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: labels("app", fmt.Sprintf("a%d", q%10)), NamespaceSelector: labels("team", fmt.Sprintf("t%d", q%7))}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &named, Protocol: &tcp}},
			}
		case 2:
			p := port(&tcp, 9000)
			end := int32(9100)
			p.EndPort = &end
			rule = networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
				CIDR: "10.0.0.0/8", Except: []string{fmt.Sprintf("10.42.%d.0/24", q%50)}}}}, Ports: []networkingv1.NetworkPolicyPort{p}}
		case 3:
			rule = networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod"}}}}}}}
		}
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pol-%d", q), Namespace: fmt.Sprintf("ns-%d", q%w.Namespaces)},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *labels("app", fmt.Sprintf("a%d", q%10)),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{rule},
			},
		}
		if q%3 == 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: labels("tier", "db")}}, Ports: []networkingv1.NetworkPolicyPort{port(&tcp, 5432)}},
				{Ports: []networkingv1.NetworkPolicyPort{port(&udp, 53)}},
			}
		}
		out = append(out, np)
	}
	return out
}

func labels(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

func port(proto *corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(n)
	return networkingv1.NetworkPolicyPort{Protocol: proto, Port: &p}
}
