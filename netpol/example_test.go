package netpol_test

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k3snet/k3snet/netpol"
)

// examplePod is a running pod with one address on a node.
func examplePod(ns, name, node, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  ip,
			PodIPs: []corev1.PodIP{{IP: ip}},
		},
	}
}

// exampleShop is the examples' cluster: namespace shop holds web (on node1) and client (on
// node2), and the policy lets web accept TCP/80 from client pods only.
func exampleShop() (namespaces []*corev1.Namespace, web, client *corev1.Pod, policy *networkingv1.NetworkPolicy) {
	namespaces = []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{
		Name: "shop", Labels: map[string]string{"kubernetes.io/metadata.name": "shop"},
	}}}
	web = examplePod("shop", "web", "node1", "10.42.0.5", map[string]string{"app": "web"})
	client = examplePod("shop", "client", "node2", "10.42.1.7", map[string]string{"app": "client"})
	tcp := corev1.ProtocolTCP
	http := intstr.FromInt32(80)
	policy = &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-from-client"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}},
				}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &http}},
			}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	return namespaces, web, client, policy
}

// Compile turns node1's view of the cluster into the ipsets and iptables chains its dataplane
// programs. Set and chain names derive from content and identity, so the same input always
// gives the same text. web's ingress goes through the chain of the pods the policy selects,
// its egress through the chain of the pods no policy isolates for egress; the top-level
// chains find each pod's groups by its address in the groups' sets.
func ExampleCompile() {
	namespaces, web, client, policy := exampleShop()
	st, err := netpol.Compile(netpol.Input{
		NodeName:     "node1",
		PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("10.42.0.0/24")},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")},
		Namespaces:   namespaces,
		Pods:         []*corev1.Pod{web, client},
		Policies:     []*networkingv1.NetworkPolicy{policy},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rs := range st.Rulesets {
		fmt.Println("family", rs.Family)
		for _, set := range rs.Sets {
			fmt.Printf("ipset %s %s %s\n", set.Name, set.Type, strings.Join(set.Entries, ","))
		}
		for _, ch := range rs.Chains {
			fmt.Println("chain", ch.Name)
			for _, r := range ch.Rules {
				fmt.Println("  ", r)
			}
		}
	}
	// Output:
	// family IPv4
	// ipset KUBE-DST-EBTZQ72RHA6TI3WG hash:ip 10.42.0.5
	// ipset KUBE-DST-UPQQGUMRP4DXYHRE hash:ip 10.42.0.5
	// ipset KUBE-SRC-I4UTIRGN4CYDV5EV hash:ip 10.42.0.5
	// ipset KUBE-SRC-POLWTSEMWJMBXY27 hash:ip 10.42.1.7
	// chain KUBE-ROUTER-INPUT
	//    -d 10.43.0.0/16 -m comment --comment "allow traffic to cluster IP range" -j RETURN
	//    -m set --match-set KUBE-SRC-I4UTIRGN4CYDV5EV src -j KUBE-POD-FW-4SDXLL5ITLF6VHE6
	//    -j KUBE-NWPLCY-TAIL
	// chain KUBE-ROUTER-FORWARD
	//    -m set --match-set KUBE-SRC-I4UTIRGN4CYDV5EV src -j KUBE-POD-FW-4SDXLL5ITLF6VHE6
	//    -m set --match-set KUBE-DST-UPQQGUMRP4DXYHRE dst -j KUBE-POD-FW-USMZAHABWBS3HLRY
	//    -j KUBE-NWPLCY-TAIL
	// chain KUBE-ROUTER-OUTPUT
	//    -m set --match-set KUBE-SRC-I4UTIRGN4CYDV5EV src -j KUBE-POD-FW-4SDXLL5ITLF6VHE6
	//    -m set --match-set KUBE-DST-UPQQGUMRP4DXYHRE dst -j KUBE-POD-FW-USMZAHABWBS3HLRY
	//    -j KUBE-NWPLCY-TAIL
	// chain KUBE-NWPLCY-COMMON
	//    -m conntrack --ctstate INVALID -j DROP
	//    -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
	//    -p icmp -m icmp --icmp-type echo-request -j ACCEPT
	//    -p icmp -m icmp --icmp-type destination-unreachable -j ACCEPT
	//    -p icmp -m icmp --icmp-type time-exceeded -j ACCEPT
	// chain KUBE-NWPLCY-DEFAULT
	//    -j MARK --set-xmark 0x10000/0x10000
	// chain KUBE-NWPLCY-TAIL
	//    -s 10.42.0.0/24 -m addrtype ! --src-type LOCAL -m set ! --match-set KUBE-DST-EBTZQ72RHA6TI3WG src -m comment --comment "reject unprogrammed local pod" -j REJECT
	//    -d 10.42.0.0/24 -m addrtype ! --dst-type LOCAL -m set ! --match-set KUBE-DST-EBTZQ72RHA6TI3WG dst -m comment --comment "reject unprogrammed local pod" -j REJECT
	//    -m mark --mark 0x20000/0x20000 -m comment --comment "accept netpol-ok" -j ACCEPT
	// chain KUBE-NWPLCY-QD5KVHEUCLL2IA2L
	//    -m set --match-set KUBE-SRC-POLWTSEMWJMBXY27 src -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x10000/0x10000
	// chain KUBE-POD-FW-4SDXLL5ITLF6VHE6
	//    -j KUBE-NWPLCY-COMMON
	//    -j KUBE-NWPLCY-DEFAULT
	//    -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100
	//    -m mark ! --mark 0x10000/0x10000 -j REJECT
	//    -j MARK --set-xmark 0x0/0x10000
	//    -j MARK --set-xmark 0x20000/0x20000
	// chain KUBE-POD-FW-USMZAHABWBS3HLRY
	//    -j KUBE-NWPLCY-COMMON
	//    -m addrtype --src-type LOCAL -j ACCEPT
	//    -j KUBE-NWPLCY-QD5KVHEUCLL2IA2L
	//    -m mark ! --mark 0x10000/0x10000 -m limit --limit 10/min --limit-burst 10 -j NFLOG --nflog-group 100
	//    -m mark ! --mark 0x10000/0x10000 -j REJECT
	//    -j MARK --set-xmark 0x0/0x10000
	//    -j MARK --set-xmark 0x20000/0x20000
}

// New builds the controller of one node; nothing touches the host until Start. Options are
// validated first, every invalid field reported at once.
func ExampleNew() {
	kube := fake.NewClientset()
	if _, err := netpol.New(kube, netpol.Options{NodeName: "node1"}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("controller for node1 built")

	_, err := netpol.New(kube, netpol.Options{NodePortFirst: 32767, NodePortLast: 30000})
	fmt.Println(err)
	// Output:
	// controller for node1 built
	// netpol: invalid options: NodeName is required
	// NodePortFirst-NodePortLast 32767-30000 is not a port range
}

// SharedPodFields as the transform of a Pod cache that only the controller reads: replicas'
// copies hold one labels map between them.
func ExampleSharedPodFields() {
	podFields := netpol.SharedPodFields()
	transform := func(obj any) (any, error) {
		if pod, ok := obj.(*corev1.Pod); ok {
			return podFields(pod), nil
		}
		return obj, nil
	}
	// An informer takes it with SetTransform(transform) before it starts.
	a, _ := transform(examplePod("shop", "web-1", "node1", "10.42.0.10", map[string]string{"app": "web"}))
	b, _ := transform(examplePod("shop", "web-2", "node2", "10.42.1.10", map[string]string{"app": "web"}))
	la, lb := a.(*corev1.Pod).Labels, b.(*corev1.Pod).Labels
	fmt.Println(lb["app"], fmt.Sprintf("%p", la) == fmt.Sprintf("%p", lb))
	// Output: web true
}
