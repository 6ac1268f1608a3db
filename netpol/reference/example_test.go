package reference_test

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k3snet/k3snet/netpol/reference"
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

// Evaluate is the reference semantics of NetworkPolicy, with the reason for each direction's
// decision.
func ExampleEvaluate() {
	namespaces, web, client, policy := exampleShop()
	cluster := reference.Cluster{Namespaces: namespaces, Policies: []*networkingv1.NetworkPolicy{policy}}
	for _, conn := range []reference.Connection{
		{Src: reference.Endpoint{Pod: client}, Dst: reference.Endpoint{Pod: web}, Port: 80},
		{Src: reference.Endpoint{Pod: client}, Dst: reference.Endpoint{Pod: web}, Port: 443},
		{Src: reference.Endpoint{Pod: web}, Dst: reference.Endpoint{Pod: client}, Port: 80},
	} {
		v, err := reference.Evaluate(cluster, conn)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %s\n", conn, v)
	}
	// Output:
	// shop/client -> shop/web TCP/80: allowed (egress: NotIsolated; ingress: AllowedByRule by shop/web-from-client ingress[0])
	// shop/client -> shop/web TCP/443: denied (egress: NotIsolated; ingress: NoRuleAllows, selected by shop/web-from-client)
	// shop/web -> shop/client TCP/80: allowed (egress: NotIsolated; ingress: NotIsolated)
}

// Reachability prints the truth table upstream's NetworkPolicy e2e tests print: "." where
// the probe gets through, "X" where it is denied.
func ExampleReachability() {
	namespaces, web, client, policy := exampleShop()
	cluster := reference.Cluster{Namespaces: namespaces, Policies: []*networkingv1.NetworkPolicy{policy}}
	outside := reference.Endpoint{IP: netip.MustParseAddr("192.0.2.10")}
	m, err := reference.Reachability(cluster,
		[]reference.Endpoint{{Pod: client}, {Pod: web}, outside},
		reference.Probe{Protocol: corev1.ProtocolTCP, Port: 80})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(m)
	// Output:
	// TCP/80      shop/client shop/web 192.0.2.10
	// shop/client .           .        .
	// shop/web    .           .        .
	// 192.0.2.10  .           X        .
}
