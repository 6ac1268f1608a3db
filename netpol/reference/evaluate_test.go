package reference

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podEP and ipEP shorten endpoints in the tables.
func podEP(pod *corev1.Pod) Endpoint { return Endpoint{Pod: pod} }
func ipEP(ip string) Endpoint        { return Endpoint{IP: addr(ip)} }

// nodeEP is host traffic of node from ip.
func nodeEP(node, ip string) Endpoint { return Endpoint{IP: addr(ip), Node: node} }

// tcp, udp and sctp build a connection on a port.
func tcp(src, dst Endpoint, port int32) Connection {
	return Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolTCP, Port: port}
}

func udp(src, dst Endpoint, port int32) Connection {
	return Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolUDP, Port: port}
}

func sctp(src, dst Endpoint, port int32) Connection {
	return Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolSCTP, Port: port}
}

// v6 switches a connection to IPv6.
func v6(c Connection) Connection {
	c.Family = corev1.IPv6Protocol
	return c
}

// TestEvaluate covers the edge semantics of the NetworkPolicy API one connection at a time, checking the
// outcome and the reason of each direction.
func TestEvaluate(t *testing.T) {
	var (
		xa, xb, xc = makePod("x", "a"), makePod("x", "b"), makePod("x", "c")
		ya, yb     = makePod("y", "a"), makePod("y", "b")
		zc         = makePod("z", "c")
		web        = makePod("x", "web", withIPs("10.0.1.10", "fd00::1:10"), servingOnly(containerPort("http", corev1.ProtocolTCP, 8080)))
		alt        = makePod("x", "alt", withIPs("10.0.1.11"), servingOnly(containerPort("http", corev1.ProtocolTCP, 9090)))
		unproto    = makePod("x", "unproto", withIPs("10.0.1.12"), servingOnly(containerPort("http", "", 8080)))
		sidecar    = makePod("x", "sidecar", withIPs("10.0.1.13"), func(p *corev1.Pod) {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = []corev1.Container{
				{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{containerPort("metrics", corev1.ProtocolTCP, 9100)}},
				{Name: "setup", Ports: []corev1.ContainerPort{containerPort("setup", corev1.ProtocolTCP, 9200)}},
			}
		})
		unlabelled = makePod("x", "d", func(p *corev1.Pod) { delete(p.Labels, "pod") })
		hostLocal  = makePod("x", "host-1", hostNetwork("node-1", "192.168.0.1"))
		hostRemote = makePod("x", "host-2", hostNetwork("node-2", "192.168.0.2"))
		done       = makePod("x", "done", withIPs("10.0.1.20"), withPhase(corev1.PodSucceeded))
		failedB    = makePod("x", "b-old", withIPs("10.0.1.21"), withLabels("pod", "b"), withPhase(corev1.PodFailed))
		pending    = makePod("x", "new", withIPs("10.0.1.22"), withPhase(corev1.PodPending))

		ext  = ipEP("192.0.2.10")
		ext6 = ipEP("2001:db8::10")

		podA    = labelsSel("pod", "a")
		podB    = labelsSel("pod", "b")
		denyAll = makePolicy("x", "deny-all", policyTypes(typeIngress, typeEgress))
		denyIn  = makePolicy("x", "deny-ingress", policyTypes(typeIngress))
		denyOut = makePolicy("x", "deny-egress", policyTypes(typeEgress))
		aFrom   = func(p ...networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
			return makePolicy("x", "a-from", targets(podA), ingressRules(from(p)))
		}
		aOnPorts = func(ports ...networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
			return makePolicy("x", "a-ports", targets(podA), ingressRules(from(nil, ports...)))
		}
		allOnPorts = func(ports ...networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
			return makePolicy("x", "all-ports", ingressRules(from(nil, ports...)))
		}
		aEgressTo = func(rules ...networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
			return makePolicy("x", "a-egress", targets(podA), policyTypes(typeEgress), egressRules(rules...))
		}
	)
	const (
		notAPod   = ReasonNotAPod
		notIso    = ReasonNotIsolated
		byRule    = ReasonAllowedByRule
		noRule    = ReasonNoRuleAllows
		hostNet   = ReasonHostNetwork
		finished  = ReasonPodFinished
		loopback  = ReasonLoopback
		ownNode   = ReasonFromOwnNode
		allowed   = true
		forbidden = false
	)
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		// namespaces replaces the model namespaces when set.
		namespaces  []*corev1.Namespace
		conn        Connection
		want        bool
		wantEgress  Reason
		wantIngress Reason
	}{
		// policyTypes defaulting.
		{
			name:     "a policy without policyTypes and with only ingress rules does not isolate egress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "in", ingressRules(from(peers(podPeer(podB)))))},
			conn:     tcp(podEP(xa), podEP(ya), 80),
			want:     allowed, wantEgress: notIso, wantIngress: notIso,
		},
		{
			name:     "a policy without policyTypes and with an empty egress list does not isolate egress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "empty-egress", egressRules())},
			conn:     tcp(podEP(xa), podEP(ya), 80),
			want:     allowed, wantEgress: notIso, wantIngress: notIso,
		},
		{
			name:     "a policy without policyTypes and with an empty egress list still isolates ingress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "empty-egress", egressRules())},
			conn:     tcp(podEP(ya), podEP(xa), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "a policy without policyTypes and with egress rules isolates egress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "egress-b", egressRules(to(peers(podPeer(podB)))))},
			conn:     tcp(podEP(xa), podEP(xc), 80),
			want:     forbidden, wantEgress: noRule, wantIngress: noRule,
		},
		{
			name:     "a policy without policyTypes and with an allow-all egress rule allows egress but isolates ingress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "egress-all", egressRules(to(nil)))},
			conn:     tcp(podEP(xa), podEP(xb), 80),
			want:     forbidden, wantEgress: byRule, wantIngress: noRule,
		},
		{
			name: "policyTypes Egress leaves ingress open even with an empty ingress list",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "egress-only", policyTypes(typeEgress),
				ingressRules(), egressRules(to(nil)))},
			conn: tcp(podEP(ya), podEP(xa), 80),
			want: allowed, wantEgress: notIso, wantIngress: notIso,
		},
		{
			name: "policyTypes Ingress ignores the policy's egress rules",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "ingress-only", policyTypes(typeIngress),
				ingressRules(from(nil)), egressRules(to(peers(podPeer(podB)))))},
			conn: tcp(podEP(xa), podEP(ya), 80),
			want: allowed, wantEgress: notIso, wantIngress: notIso,
		},
		{
			name:     "a port without protocol allows TCP",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(port(80))},
			conn:     tcp(podEP(ya), podEP(xa), 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "a port without protocol does not allow UDP",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(port(80))},
			conn:     udp(podEP(ya), podEP(xa), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "a connection without protocol is TCP",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(protoPort(corev1.ProtocolTCP, 80))},
			conn:     Connection{Src: podEP(ya), Dst: podEP(xa), Port: 80},
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},

		// nil versus empty.
		{
			name:     "a nil ingress list of an ingress policy denies all",
			policies: []*networkingv1.NetworkPolicy{denyIn},
			conn:     tcp(ext, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "an empty ingress list denies like a nil one",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "empty", ingressRules())},
			conn:     tcp(ext, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "an empty rule allows every source, external included, on every protocol and port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "allow-all", ingressRules(from(nil)))},
			conn:     sctp(ext, podEP(xa), 9999),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name: "an empty but non-nil from list matches every source",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "empty-from",
				ingressRules(from([]networkingv1.NetworkPolicyPeer{}, port(80))))},
			conn: tcp(ext, podEP(xa), 80),
			want: allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "an egress rule without to matches an external destination",
			policies: []*networkingv1.NetworkPolicy{aEgressTo(to(nil, port(443)))},
			conn:     tcp(podEP(xa), ext, 443),
			want:     allowed, wantEgress: byRule, wantIngress: notAPod,
		},
		{
			name:     "a rule without ports matches every protocol and port",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(podB))},
			conn:     sctp(podEP(xb), podEP(xa), 7000),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name: "an empty but non-nil ports list matches every port",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "empty-ports", ingressRules(
				networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{}}))},
			conn: udp(ext, podEP(xa), 5353),
			want: allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "an empty podSelector selects every pod of the policy namespace",
			policies: []*networkingv1.NetworkPolicy{denyIn},
			conn:     tcp(podEP(ya), podEP(xc), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "an empty podSelector does not select pods of other namespaces",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(zc), podEP(ya), 80),
			want:     allowed, wantEgress: notIso, wantIngress: notIso,
		},

		// peers.
		{
			name:     "a podSelector-only peer does not match a same-labelled pod of another namespace",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(podB))},
			conn:     tcp(podEP(yb), podEP(xa), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "an empty namespaceSelector peer matches a pod of another namespace",
			policies: []*networkingv1.NetworkPolicy{aFrom(nsPeer(labelsSel()))},
			conn:     tcp(podEP(zc), podEP(xa), 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an empty namespaceSelector peer does not match an external address",
			policies: []*networkingv1.NetworkPolicy{aFrom(nsPeer(labelsSel()))},
			conn:     tcp(ext, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "an empty podSelector peer does not match an external address",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(labelsSel()))},
			conn:     tcp(ext, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "a peer with both selectors empty matches a pod of any namespace",
			policies: []*networkingv1.NetworkPolicy{aFrom(podNSPeer(labelsSel(), labelsSel()))},
			conn:     tcp(podEP(zc), podEP(xa), 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "a pod-and-namespace peer does not match the right namespace with the wrong pod",
			policies: []*networkingv1.NetworkPolicy{aFrom(podNSPeer(podB, labelsSel("ns", "y")))},
			conn:     tcp(podEP(ya), podEP(xa), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "matchExpressions Exists matches any value of the key",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(exprSel("pod", metav1.LabelSelectorOpExists)))},
			conn:     tcp(podEP(xb), podEP(xa), 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "matchExpressions DoesNotExist excludes a pod carrying the key",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(exprSel("pod", metav1.LabelSelectorOpDoesNotExist)))},
			conn:     tcp(podEP(xb), podEP(xa), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "matchExpressions DoesNotExist matches a pod without the key",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(exprSel("pod", metav1.LabelSelectorOpDoesNotExist)))},
			conn:     tcp(podEP(unlabelled), podEP(xa), 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:       "the namespace name label matches even when the namespace object lacks it",
			policies:   []*networkingv1.NetworkPolicy{aFrom(nsPeer(labelsSel(corev1.LabelMetadataName, "y")))},
			namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "y"}}},
			conn:       tcp(podEP(ya), podEP(xa), 80),
			want:       allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:       "a namespace missing from the input still carries its name label",
			policies:   []*networkingv1.NetworkPolicy{aFrom(nsPeer(labelsSel(corev1.LabelMetadataName, "y")))},
			namespaces: []*corev1.Namespace{},
			conn:       tcp(podEP(ya), podEP(xa), 80),
			want:       allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:       "a namespace missing from the input carries no other label",
			policies:   []*networkingv1.NetworkPolicy{aFrom(nsPeer(labelsSel("ns", "y")))},
			namespaces: []*corev1.Namespace{},
			conn:       tcp(podEP(ya), podEP(xa), 80),
			want:       forbidden, wantEgress: notIso, wantIngress: noRule,
		},

		// ipBlock.
		{
			name:     "an ipBlock matches an external address inside its cidr",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("192.0.2.0/24"))},
			conn:     tcp(ext, podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "an ipBlock except excludes an address inside the cidr",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("192.0.2.0/24", "192.0.2.0/28"))},
			conn:     tcp(ext, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "an address excepted by one peer is allowed by another peer of the same rule",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("192.0.2.0/24", "192.0.2.0/28"), cidrPeer("192.0.2.0/28"))},
			conn:     tcp(ext, podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name: "an address excepted by one policy is allowed by another policy",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("192.0.2.0/24", "192.0.2.0/28")),
				makePolicy("x", "narrow", targets(podA), ingressRules(from(peers(cidrPeer("192.0.2.10/32")))))},
			conn: tcp(ext, podEP(xa), 80),
			want: allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "0.0.0.0/0 matches the IPv4 broadcast address",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("0.0.0.0/0"))},
			conn:     tcp(ipEP("255.255.255.255"), podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "::/0 matches an IPv6 link-local address",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("::/0"))},
			conn:     tcp(ipEP("fe80::1"), podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "::/0 matches a unique local IPv6 address outside 2000::/3",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("::/0"))},
			conn:     tcp(ipEP("fc00::1"), podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "an IPv4 ipBlock never matches IPv6 traffic",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("0.0.0.0/0"))},
			conn:     tcp(ext6, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "an IPv6 ipBlock never matches IPv4 traffic",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("::/0"))},
			conn:     tcp(ext, podEP(xa), 80),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "an ipBlock matches a pod address",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("10.0.2.1/32"))},
			conn:     tcp(podEP(ya), podEP(xa), 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an ipBlock with host bits set matches its whole network",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("192.0.2.1/24"))},
			conn:     tcp(ipEP("192.0.2.200"), podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
		{
			name:     "an egress ipBlock allows an external destination inside it",
			policies: []*networkingv1.NetworkPolicy{aEgressTo(to(peers(cidrPeer("192.0.2.0/24"))))},
			conn:     tcp(podEP(xa), ext, 443),
			want:     allowed, wantEgress: byRule, wantIngress: notAPod,
		},
		{
			name:     "an egress ipBlock denies a pod outside it",
			policies: []*networkingv1.NetworkPolicy{aEgressTo(to(peers(cidrPeer("192.0.2.0/24"))))},
			conn:     tcp(podEP(xa), podEP(ya), 80),
			want:     forbidden, wantEgress: noRule, wantIngress: notIso,
		},

		// named ports.
		{
			name:     "an ingress named port resolves to the destination pod's number",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(namedPort("http"))},
			conn:     tcp(podEP(ya), podEP(web), 8080),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an ingress named port resolves per pod, to another number on another pod",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(namedPort("http"))},
			conn:     tcp(podEP(ya), podEP(alt), 9090),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an ingress named port does not open another pod's number for the name",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(namedPort("http"))},
			conn:     tcp(podEP(ya), podEP(alt), 8080),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name: "an egress named port resolves on the destination pod, not on the source",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "web-egress", targets(labelsSel("pod", "web")),
				policyTypes(typeEgress), egressRules(to(nil, namedPort("http"))))},
			conn: tcp(podEP(web), podEP(alt), 9090),
			want: allowed, wantEgress: byRule, wantIngress: notIso,
		},
		{
			name: "an egress named port does not open the source's own number for the name",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "web-egress", targets(labelsSel("pod", "web")),
				policyTypes(typeEgress), egressRules(to(nil, namedPort("http"))))},
			conn: tcp(podEP(web), podEP(alt), 8080),
			want: forbidden, wantEgress: noRule, wantIngress: notIso,
		},
		{
			name:     "a named port with another protocol than the container port matches nothing",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(protoNamedPort(corev1.ProtocolUDP, "http"))},
			conn:     udp(podEP(ya), podEP(web), 8080),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "a container port without protocol serves its name over TCP",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(namedPort("http"))},
			conn:     tcp(podEP(ya), podEP(unproto), 8080),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "a named port the destination does not serve matches nothing",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(protoNamedPort(corev1.ProtocolUDP, "serve-7981-udp"))},
			conn:     udp(podEP(ya), podEP(xa), 7981),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "a named port of a sidecar container counts",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(namedPort("metrics"))},
			conn:     tcp(podEP(ya), podEP(sidecar), 9100),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "a named port of a run-once init container does not count",
			policies: []*networkingv1.NetworkPolicy{allOnPorts(namedPort("setup"))},
			conn:     tcp(podEP(ya), podEP(sidecar), 9200),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "an egress named port never matches an external destination",
			policies: []*networkingv1.NetworkPolicy{aEgressTo(to(nil, namedPort("serve-80-tcp")))},
			conn:     tcp(podEP(xa), ext, 80),
			want:     forbidden, wantEgress: noRule, wantIngress: notAPod,
		},
		{
			name:     "an egress named port never matches a hostNetwork destination",
			policies: []*networkingv1.NetworkPolicy{aEgressTo(to(nil, namedPort("serve-80-tcp")))},
			conn:     tcp(podEP(xa), podEP(hostRemote), 80),
			want:     forbidden, wantEgress: noRule, wantIngress: hostNet,
		},

		// endPort.
		{
			name:     "an endPort range includes its first port",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(portRange(corev1.ProtocolTCP, 8000, 8080))},
			conn:     tcp(podEP(ya), podEP(xa), 8000),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an endPort range includes its last port",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(portRange(corev1.ProtocolTCP, 8000, 8080))},
			conn:     tcp(podEP(ya), podEP(xa), 8080),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an endPort range excludes the port before it",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(portRange(corev1.ProtocolTCP, 8000, 8080))},
			conn:     tcp(podEP(ya), podEP(xa), 7999),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "an endPort range excludes the port after it",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(portRange(corev1.ProtocolTCP, 8000, 8080))},
			conn:     tcp(podEP(ya), podEP(xa), 8081),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "an endPort range applies to its protocol only",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(portRange(corev1.ProtocolUDP, 8000, 8080))},
			conn:     tcp(podEP(ya), podEP(xa), 8040),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},

		// protocols.
		{
			name:     "a protocol-only UDP entry allows every UDP port",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(protoOnly(corev1.ProtocolUDP))},
			conn:     udp(podEP(ya), podEP(xa), 5353),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "a protocol-only UDP entry denies TCP",
			policies: []*networkingv1.NetworkPolicy{aOnPorts(protoOnly(corev1.ProtocolUDP))},
			conn:     tcp(podEP(ya), podEP(xa), 5353),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},

		// both directions, independently.
		{
			name:     "the source's egress allow does not override the destination's ingress deny",
			policies: []*networkingv1.NetworkPolicy{aEgressTo(to(nil)), makePolicy("y", "deny-ingress", policyTypes(typeIngress))},
			conn:     tcp(podEP(xa), podEP(ya), 80),
			want:     forbidden, wantEgress: byRule, wantIngress: noRule,
		},
		{
			name:     "the destination's ingress allow does not override the source's egress deny",
			policies: []*networkingv1.NetworkPolicy{denyOut, makePolicy("y", "allow-all", ingressRules(from(nil)))},
			conn:     tcp(podEP(xa), podEP(ya), 80),
			want:     forbidden, wantEgress: noRule, wantIngress: byRule,
		},
		{
			name: "an ingress rule of a two-direction policy never satisfies its egress",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "same-ns-and-dns", policyTypes(typeIngress, typeEgress),
				ingressRules(from(peers(podPeer(labelsSel())))), egressRules(to(nil, protoPort(corev1.ProtocolUDP, 53))))},
			conn: tcp(podEP(xa), podEP(xb), 80),
			want: forbidden, wantEgress: noRule, wantIngress: byRule,
		},
		{
			name: "the two-direction policy allows its DNS-like egress inside the namespace",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "same-ns-and-dns", policyTypes(typeIngress, typeEgress),
				ingressRules(from(peers(podPeer(labelsSel())))), egressRules(to(nil, protoPort(corev1.ProtocolUDP, 53))))},
			conn: udp(podEP(xa), podEP(xb), 53),
			want: allowed, wantEgress: byRule, wantIngress: byRule,
		},

		// hostNetwork pods and nodes.
		{
			name:     "a hostNetwork pod is not isolated by a policy selecting every pod",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(ya), podEP(hostRemote), 80),
			want:     allowed, wantEgress: notIso, wantIngress: hostNet,
		},
		{
			name:     "a hostNetwork pod's egress is not subject to an egress deny",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(hostRemote), podEP(ya), 80),
			want:     allowed, wantEgress: hostNet, wantIngress: notIso,
		},
		{
			name:     "a hostNetwork pod on the destination's node is admitted under deny-all",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(hostLocal), podEP(xa), 80),
			want:     allowed, wantEgress: hostNet, wantIngress: ownNode,
		},
		{
			name:     "a hostNetwork pod on another node is denied by deny-all",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(hostRemote), podEP(xa), 80),
			want:     forbidden, wantEgress: hostNet, wantIngress: noRule,
		},
		{
			name:     "a podSelector peer does not match a hostNetwork pod",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(labelsSel()))},
			conn:     tcp(podEP(hostRemote), podEP(xa), 80),
			want:     forbidden, wantEgress: hostNet, wantIngress: noRule,
		},
		{
			name:     "a namespaceSelector peer does not match a hostNetwork pod",
			policies: []*networkingv1.NetworkPolicy{aFrom(nsPeer(labelsSel()))},
			conn:     tcp(podEP(hostRemote), podEP(xa), 80),
			want:     forbidden, wantEgress: hostNet, wantIngress: noRule,
		},
		{
			name:     "an ipBlock of the node address matches a hostNetwork pod",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("192.168.0.2/32"))},
			conn:     tcp(podEP(hostRemote), podEP(xa), 80),
			want:     allowed, wantEgress: hostNet, wantIngress: byRule,
		},
		{
			name:     "traffic from the destination's own node is admitted under deny-all",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(nodeEP("node-1", "192.168.0.1"), podEP(xa), 10250),
			want:     allowed, wantEgress: notAPod, wantIngress: ownNode,
		},
		{
			name:     "traffic from another node is denied by deny-all",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(nodeEP("node-2", "192.168.0.2"), podEP(xa), 10250),
			want:     forbidden, wantEgress: notAPod, wantIngress: noRule,
		},
		{
			name:     "egress to the source's own node stays subject to egress policy",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(xa), nodeEP("node-1", "192.168.0.1"), 6443),
			want:     forbidden, wantEgress: noRule, wantIngress: notAPod,
		},

		// loopback.
		{
			name:     "a pod reaching its own address is allowed under deny-all",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(xa), podEP(xa), 80),
			want:     allowed, wantEgress: loopback, wantIngress: loopback,
		},
		{
			name:     "a pod reaching its own address over IPv6 is allowed under deny-all",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     v6(tcp(podEP(xa), podEP(xa), 80)),
			want:     allowed, wantEgress: loopback, wantIngress: loopback,
		},

		// pod lifecycle.
		{
			name:     "a Succeeded pod is not isolated",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(ya), podEP(done), 80),
			want:     allowed, wantEgress: notIso, wantIngress: finished,
		},
		{
			name:     "a Failed pod's labels do not match a podSelector peer",
			policies: []*networkingv1.NetworkPolicy{aFrom(podPeer(podB))},
			conn:     tcp(podEP(failedB), podEP(xa), 80),
			want:     forbidden, wantEgress: finished, wantIngress: noRule,
		},
		{
			name:     "a Failed pod's address still matches an ipBlock",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("10.0.1.21/32"))},
			conn:     tcp(podEP(failedB), podEP(xa), 80),
			want:     allowed, wantEgress: finished, wantIngress: byRule,
		},
		{
			name:     "a Pending pod with an address is isolated",
			policies: []*networkingv1.NetworkPolicy{denyAll},
			conn:     tcp(podEP(ya), podEP(pending), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},

		// dual stack.
		{
			name:     "a selected pod is isolated over IPv6 as over IPv4",
			policies: []*networkingv1.NetworkPolicy{denyIn},
			conn:     v6(tcp(podEP(ya), podEP(xa), 80)),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "an IPv6 ipBlock admits a pod's IPv6 address",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("fd00::2:0/112"))},
			conn:     v6(tcp(podEP(ya), podEP(xa), 80)),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an IPv6 ipBlock does not admit the same pod over IPv4",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("fd00::2:0/112"))},
			conn:     tcp(podEP(ya), podEP(xa), 80),
			want:     forbidden, wantEgress: notIso, wantIngress: noRule,
		},
		{
			name:     "the family follows an explicit destination address",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("fd00::2:0/112"))},
			conn:     tcp(podEP(ya), Endpoint{Pod: xa, IP: addr("fd00::1:1")}, 80),
			want:     allowed, wantEgress: notIso, wantIngress: byRule,
		},
		{
			name:     "an external IPv6 source reaches a dual-stack pod over IPv6",
			policies: []*networkingv1.NetworkPolicy{aFrom(cidrPeer("2001:db8::/32"))},
			conn:     tcp(ext6, podEP(xa), 80),
			want:     allowed, wantEgress: notAPod, wantIngress: byRule,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			namespaces := tt.namespaces
			if namespaces == nil {
				namespaces = newModel(nil, nil).namespaces
			}
			got, err := Evaluate(Cluster{Namespaces: namespaces, Policies: tt.policies}, tt.conn)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Allowed, "%s: %s", tt.conn, got)
			assert.Equal(t, tt.wantEgress, got.Egress.Reason, "egress of %s: %s", tt.conn, got)
			assert.Equal(t, tt.wantIngress, got.Ingress.Reason, "ingress of %s: %s", tt.conn, got)
		})
	}
}

// TestEvaluateVerdict checks the whole verdict: every selecting policy and every allowing
// rule, sorted, and its one-line rendering.
func TestEvaluateVerdict(t *testing.T) {
	xa, ya := makePod("x", "a"), makePod("y", "a")
	podA := labelsSel("pod", "a")
	nsY := labelsSel("ns", "y")
	tests := []struct {
		name       string
		policies   []*networkingv1.NetworkPolicy
		conn       Connection
		want       Verdict
		wantString string
	}{
		{
			name: "every allowing rule of every selecting policy is listed, sorted by policy",
			policies: []*networkingv1.NetworkPolicy{
				makePolicy("x", "zz-ports", targets(podA), ingressRules(from(nil, port(81)), from(peers(nsPeer(nsY)), port(80)))),
				makePolicy("x", "aa-from-y", targets(podA), ingressRules(from(peers(podPeer(podA))), from(peers(nsPeer(nsY))))),
				makePolicy("x", "mm-deny", policyTypes(typeIngress)),
				makePolicy("y", "other-namespace", policyTypes(typeIngress)),
			},
			conn: tcp(podEP(ya), podEP(xa), 80),
			want: Verdict{
				Allowed: true,
				Egress:  Decision{Allowed: true, Reason: ReasonNotIsolated},
				Ingress: Decision{
					Allowed: true,
					Reason:  ReasonAllowedByRule,
					SelectedBy: []types.NamespacedName{
						{Namespace: "x", Name: "aa-from-y"}, {Namespace: "x", Name: "mm-deny"}, {Namespace: "x", Name: "zz-ports"},
					},
					AllowedBy: []RuleRef{
						{Policy: types.NamespacedName{Namespace: "x", Name: "aa-from-y"}, Index: 1},
						{Policy: types.NamespacedName{Namespace: "x", Name: "zz-ports"}, Index: 1},
					},
				},
			},
			wantString: "allowed (egress: NotIsolated; ingress: AllowedByRule by x/aa-from-y ingress[1], x/zz-ports ingress[1])",
		},
		{
			name: "a denied connection names the policies that isolate each side",
			policies: []*networkingv1.NetworkPolicy{
				makePolicy("x", "deny-egress", policyTypes(typeEgress)),
				makePolicy("y", "deny-ingress", policyTypes(typeIngress)),
				makePolicy("y", "egress-elsewhere", policyTypes(typeEgress), egressRules(to(nil))),
			},
			conn: tcp(podEP(xa), podEP(ya), 80),
			want: Verdict{
				Egress:  Decision{Reason: ReasonNoRuleAllows, SelectedBy: []types.NamespacedName{{Namespace: "x", Name: "deny-egress"}}},
				Ingress: Decision{Reason: ReasonNoRuleAllows, SelectedBy: []types.NamespacedName{{Namespace: "y", Name: "deny-ingress"}}},
			},
			wantString: "denied (egress: NoRuleAllows, selected by x/deny-egress; ingress: NoRuleAllows, selected by y/deny-ingress)",
		},
		{
			name:     "an egress allow is named with its egress index",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "egress", targets(podA), policyTypes(typeEgress), egressRules(to(nil, port(53)), to(nil)))},
			conn:     tcp(podEP(xa), ipEP("192.0.2.1"), 80),
			want: Verdict{
				Allowed: true,
				Egress: Decision{Allowed: true, Reason: ReasonAllowedByRule,
					SelectedBy: []types.NamespacedName{{Namespace: "x", Name: "egress"}},
					AllowedBy:  []RuleRef{{Policy: types.NamespacedName{Namespace: "x", Name: "egress"}, Index: 1}}},
				Ingress: Decision{Allowed: true, Reason: ReasonNotAPod},
			},
			wantString: "allowed (egress: AllowedByRule by x/egress egress[1]; ingress: NotAPod)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Evaluate(newModel(nil, nil).cluster(tt.policies...), tt.conn)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantString, got.String())
		})
	}
}

// TestEvaluateErrors checks that connections that cannot exist and policies the API server
// would reject are refused rather than guessed at.
func TestEvaluateErrors(t *testing.T) {
	xa, ya := makePod("x", "a"), makePod("y", "a")
	v4only := makePod("x", "v4", withIPs("10.0.1.30"))
	noIP := makePod("x", "noip", withIPs())
	ok := tcp(podEP(ya), podEP(xa), 80)
	withPort := func(p networkingv1.NetworkPolicyPort) *networkingv1.NetworkPolicy {
		return makePolicy("x", "bad-port", ingressRules(from(nil, p)))
	}
	withPeer := func(p networkingv1.NetworkPolicyPeer) *networkingv1.NetworkPolicy {
		return makePolicy("x", "bad-peer", ingressRules(from(peers(p))))
	}
	namedRange := namedPort("http")
	end := int32(90)
	namedRange.EndPort = &end
	endOnly := networkingv1.NetworkPolicyPort{EndPort: &end}
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		conn     Connection
		wantErr  error
	}{
		{
			name:    "explicit addresses of two families are refused",
			conn:    tcp(Endpoint{Pod: ya, IP: addr("10.0.2.1")}, Endpoint{Pod: xa, IP: addr("fd00::1:1")}, 80),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "an explicit address that disagrees with Family is refused",
			conn:    v6(tcp(ipEP("192.0.2.1"), podEP(xa), 80)),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "a pod without an address of the connection's family is refused",
			conn:    v6(tcp(podEP(v4only), podEP(xa), 80)),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "a pod without any address is refused",
			conn:    tcp(podEP(noIP), podEP(xa), 80),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "an explicit address the pod does not hold is refused",
			conn:    tcp(Endpoint{Pod: ya, IP: addr("10.0.9.9")}, podEP(xa), 80),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "an endpoint without pod or address is refused",
			conn:    tcp(Endpoint{}, podEP(xa), 80),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "an unknown protocol is refused",
			conn:    Connection{Src: podEP(ya), Dst: podEP(xa), Protocol: "ICMP", Port: 80},
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "port 0 is refused",
			conn:    tcp(podEP(ya), podEP(xa), 0),
			wantErr: ErrInvalidConnection,
		},
		{
			name:    "port 65536 is refused",
			conn:    tcp(podEP(ya), podEP(xa), 65536),
			wantErr: ErrInvalidConnection,
		},
		{
			name:     "a podSelector with an unknown operator is refused",
			policies: []*networkingv1.NetworkPolicy{makePolicy("x", "bad", targets(exprSel("pod", "Near", "a")))},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name:     "a peer selector with an In operator and no values is refused",
			policies: []*networkingv1.NetworkPolicy{withPeer(nsPeer(exprSel("ns", metav1.LabelSelectorOpIn)))},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name:     "an unparsable cidr is refused",
			policies: []*networkingv1.NetworkPolicy{withPeer(cidrPeer("10.0.0.0"))},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name:     "an unparsable except is refused",
			policies: []*networkingv1.NetworkPolicy{withPeer(cidrPeer("10.0.0.0/8", "10.1.0.0/33"))},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name:     "a peer without any field is refused",
			policies: []*networkingv1.NetworkPolicy{withPeer(networkingv1.NetworkPolicyPeer{})},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name: "a peer with an ipBlock and a selector is refused",
			policies: []*networkingv1.NetworkPolicy{withPeer(networkingv1.NetworkPolicyPeer{
				PodSelector: labelsSel(), IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}})},
			conn:    ok,
			wantErr: ErrInvalidPolicy,
		},
		{
			name:     "an endPort with a named port is refused",
			policies: []*networkingv1.NetworkPolicy{withPort(namedRange)},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name:     "an endPort without a port is refused",
			policies: []*networkingv1.NetworkPolicy{withPort(endOnly)},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name:     "an endPort below its port is refused",
			policies: []*networkingv1.NetworkPolicy{withPort(portRange(corev1.ProtocolTCP, 100, 90))},
			conn:     ok,
			wantErr:  ErrInvalidPolicy,
		},
		{
			name: "an invalid policy is refused even when it selects neither endpoint",
			policies: []*networkingv1.NetworkPolicy{makePolicy("z", "bad-egress", policyTypes(typeEgress),
				egressRules(to(peers(cidrPeer("not-a-cidr")))))},
			conn:    ok,
			wantErr: ErrInvalidPolicy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Evaluate(newModel(nil, nil).cluster(tt.policies...), tt.conn)
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}

// TestEvaluateDoesNotMutateInputs runs every kind of evaluation over deep copies and checks
// the inputs are unchanged: defaulting, the namespace name label and named ports are all
// computed on the side.
func TestEvaluateDoesNotMutateInputs(t *testing.T) {
	m := newModel(nil, nil)
	bare := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}
	namespaces := append(m.namespaces, bare)
	policies := []*networkingv1.NetworkPolicy{
		makePolicy("x", "defaulted", egressRules(to(nil, namedPort("serve-80-tcp")))),
		makePolicy("y", "peers", targets(labelsSel("pod", "a")), ingressRules(
			from(peers(podNSPeer(labelsSel("pod", "b"), exprSel(corev1.LabelMetadataName, metav1.LabelSelectorOpIn, "x", "bare")))),
			from(peers(cidrPeer("10.0.0.1/16", "10.0.3.0/24")), portRange(corev1.ProtocolUDP, 80, 81)),
		)),
	}
	cluster := Cluster{Namespaces: namespaces, Policies: policies}
	endpoints := append(m.endpoints(), podEP(makePod("bare", "a", withIPs("10.0.9.1", "fd00::9:1"))))
	external := map[corev1.IPFamily]Endpoint{corev1.IPv4Protocol: ipEP("192.0.2.1"), corev1.IPv6Protocol: ipEP("2001:db8::1")}
	want := Cluster{Namespaces: deepCopyAll(namespaces), Policies: deepCopyAll(policies)}
	wantPods := make([]*corev1.Pod, 0, len(endpoints))
	for _, e := range endpoints {
		if e.Pod != nil {
			wantPods = append(wantPods, e.Pod.DeepCopy())
		}
	}

	for _, probe := range []Probe{{Port: 80, Family: corev1.IPv4Protocol}, {Protocol: corev1.ProtocolUDP, Port: 81, Family: corev1.IPv6Protocol}} {
		_, err := Reachability(cluster, append(endpoints, external[probe.Family]), probe)
		require.NoError(t, err)
	}

	assert.Equal(t, want, cluster)
	gotPods := make([]*corev1.Pod, 0, len(endpoints))
	for _, e := range endpoints {
		if e.Pod != nil {
			gotPods = append(gotPods, e.Pod)
		}
	}
	assert.Equal(t, wantPods, gotPods)
}

// deepCopyAll deep-copies a list of API objects.
func deepCopyAll[T interface{ DeepCopy() T }](objs []T) []T {
	out := make([]T, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}
