package reference

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/k3snet/k3snet/netpol/netpoltest"
)

// The fixtures are the upstream e2e model's (package netpoltest), under the short names the
// tests use, plus tweaks only these tests need.
var (
	modelNamespaces = netpoltest.Namespaces
	modelPods       = netpoltest.PodNames
	makeNamespace   = netpoltest.Namespace
	makePod         = netpoltest.Pod
	withLabels      = netpoltest.WithLabels
	withIPs         = netpoltest.WithIPs

	makePolicy     = netpoltest.Policy
	targets        = netpoltest.Targets
	policyTypes    = netpoltest.PolicyTypes
	ingressRules   = netpoltest.IngressRules
	egressRules    = netpoltest.EgressRules
	from           = netpoltest.From
	to             = netpoltest.To
	peers          = netpoltest.Peers
	labelsSel      = netpoltest.LabelsSel
	exprSel        = netpoltest.ExprSel
	podPeer        = netpoltest.PodPeer
	nsPeer         = netpoltest.NSPeer
	podNSPeer      = netpoltest.PodNSPeer
	cidrPeer       = netpoltest.CIDRPeer
	port           = netpoltest.Port
	protoPort      = netpoltest.ProtoPort
	protoOnly      = netpoltest.ProtoOnly
	portRange      = netpoltest.PortRange
	namedPort      = netpoltest.NamedPort
	protoNamedPort = netpoltest.ProtoNamedPort
)

const (
	typeIngress = netpoltest.TypeIngress
	typeEgress  = netpoltest.TypeEgress
)

// withPhase sets a pod's phase.
func withPhase(phase corev1.PodPhase) func(*corev1.Pod) {
	return func(pod *corev1.Pod) { pod.Status.Phase = phase }
}

// onNode puts a pod on node.
func onNode(node string) func(*corev1.Pod) {
	return func(pod *corev1.Pod) { pod.Spec.NodeName = node }
}

// hostNetwork makes a pod use the host network of node, whose address is ip.
func hostNetwork(node, ip string) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		pod.Spec.HostNetwork = true
		onNode(node)(pod)
		withIPs(ip)(pod)
	}
}

// servingOnly replaces a pod's containers with one serving the given container ports.
func servingOnly(ports ...corev1.ContainerPort) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		pod.Spec.Containers = []corev1.Container{{Name: "main", Ports: ports}}
	}
}

// containerPort builds a named container port; an empty proto is left unset (TCP).
func containerPort(name string, proto corev1.Protocol, port int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, Protocol: proto, ContainerPort: port}
}

// model is the e2e cluster: namespaces x, y, z with pods a, b, c.
type model struct {
	namespaces []*corev1.Namespace
	pods       []*corev1.Pod
}

// newModel builds the e2e cluster; nsTweaks and podTweaks are keyed by "x" and "x/a".
func newModel(nsTweaks map[string][]func(*corev1.Namespace), podTweaks map[string][]func(*corev1.Pod)) model {
	var m model
	for _, ns := range modelNamespaces() {
		m.namespaces = append(m.namespaces, makeNamespace(ns, nsTweaks[ns]...))
		for _, name := range modelPods() {
			m.pods = append(m.pods, makePod(ns, name, podTweaks[ns+"/"+name]...))
		}
	}
	return m
}

// cluster returns the model's cluster state with policies.
func (m model) cluster(policies ...*networkingv1.NetworkPolicy) Cluster {
	return Cluster{Namespaces: m.namespaces, Policies: policies}
}

// endpoints returns every model pod as an endpoint, in x/a, x/b, ..., z/c order.
func (m model) endpoints() []Endpoint {
	eps := make([]Endpoint, len(m.pods))
	for i, pod := range m.pods {
		eps[i] = Endpoint{Pod: pod}
	}
	return eps
}

// pod returns the model pod named "ns/name".
func (m model) pod(name string) *corev1.Pod {
	for _, pod := range m.pods {
		if pod.Namespace+"/"+pod.Name == name {
			return pod
		}
	}
	panic("no model pod " + name)
}

// addr parses an address for a test table.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
