package netpol

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The fixtures follow the upstream e2e model (spec §4.1): namespaces x, y, z labelled
// ns=<name>, pods a, b, c labelled pod=<name>, one container per port and protocol serving
// 80 and 81 on TCP, UDP and SCTP through container ports named serve-<port>-<proto>.

// modelNamespaces and modelPods name the model's namespaces and pods.
func modelNamespaces() []string { return []string{"x", "y", "z"} }
func modelPods() []string       { return []string{"a", "b", "c"} }

// modelOctet gives the address octet of a model namespace or pod name, 0 for other names.
func modelOctet(name string) int {
	if len(name) != 1 {
		return 0
	}
	return 1 + max(strings.Index("xyz", name), strings.Index("abcd", name))
}

// modelAddrs returns the default IPv4 and IPv6 addresses of pod ns/name: 10.0.<ns>.<pod> and
// fd00::<ns>:<pod>.
func modelAddrs(ns, name string) []string {
	n, p := modelOctet(ns), modelOctet(name)
	if n == 0 || p == 0 {
		return nil
	}
	return []string{fmt.Sprintf("10.0.%d.%d", n, p), fmt.Sprintf("fd00::%d:%d", n, p)}
}

// makeNamespace builds a namespace labelled ns=<name> and kubernetes.io/metadata.name=<name>.
func makeNamespace(name string, tweaks ...func(*corev1.Namespace)) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"ns": name, corev1.LabelMetadataName: name},
	}}
	for _, tweak := range tweaks {
		tweak(ns)
	}
	return ns
}

// withNamespaceLabels adds label pairs k1, v1, k2, v2, ... to a namespace.
func withNamespaceLabels(kv ...string) func(*corev1.Namespace) {
	return func(ns *corev1.Namespace) {
		for i := 0; i+1 < len(kv); i += 2 {
			ns.Labels[kv[i]] = kv[i+1]
		}
	}
}

// makePod builds a Running pod on node-1 labelled pod=<name>, serving the model's six ports,
// with the model's dual-stack addresses when ns and name are part of the model.
func makePod(ns, name string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod": name}},
		Spec:       corev1.PodSpec{NodeName: "node-1"},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, port := range []int32{80, 81} {
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP} {
			suffix := fmt.Sprintf("%d-%s", port, strings.ToLower(string(proto)))
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
				Name:  "cont-" + suffix,
				Ports: []corev1.ContainerPort{{Name: "serve-" + suffix, ContainerPort: port, Protocol: proto}},
			})
		}
	}
	withIPs(modelAddrs(ns, name)...)(pod)
	for _, tweak := range tweaks {
		tweak(pod)
	}
	return pod
}

// withLabels adds label pairs k1, v1, ... to a pod.
func withLabels(kv ...string) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			pod.Labels[kv[i]] = kv[i+1]
		}
	}
}

// withIPs replaces a pod's addresses; the first is status.podIP.
func withIPs(ips ...string) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		pod.Status.PodIP, pod.Status.PodIPs = "", nil
		for i, ip := range ips {
			if i == 0 {
				pod.Status.PodIP = ip
			}
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
		}
	}
}

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

// makePolicy builds a NetworkPolicy selecting every pod of ns, without policyTypes or rules
// (so, after defaulting, a deny-all-ingress policy) and applies tweaks.
func makePolicy(ns, name string, tweaks ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, tweak := range tweaks {
		tweak(np)
	}
	return np
}

// targets sets the policy's podSelector.
func targets(sel *metav1.LabelSelector) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PodSelector = *sel }
}

// policyTypes sets the policy's policyTypes.
func policyTypes(t ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = t }
}

const (
	typeIngress = networkingv1.PolicyTypeIngress
	typeEgress  = networkingv1.PolicyTypeEgress
)

// ingressRules sets the policy's ingress list; with no argument it is an empty, non-nil list.
func ingressRules(rules ...networkingv1.NetworkPolicyIngressRule) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append([]networkingv1.NetworkPolicyIngressRule{}, rules...)
	}
}

// egressRules sets the policy's egress list; with no argument it is an empty, non-nil list.
func egressRules(rules ...networkingv1.NetworkPolicyEgressRule) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Egress = append([]networkingv1.NetworkPolicyEgressRule{}, rules...)
	}
}

// from builds an ingress rule; nil peers means from anywhere, no ports means all ports.
func from(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports}
}

// to builds an egress rule; nil peers means to anywhere, no ports means all ports.
func to(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports}
}

// peers lists peers for from and to.
func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

// labelsSel builds a matchLabels selector from pairs k1, v1, ...; with no pairs it is {}.
func labelsSel(kv ...string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	for i := 0; i+1 < len(kv); i += 2 {
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		sel.MatchLabels[kv[i]] = kv[i+1]
	}
	return sel
}

// exprSel builds a selector with one matchExpressions requirement.
func exprSel(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

// podPeer is a peer with only a podSelector.
func podPeer(sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: sel}
}

// nsPeer is a peer with only a namespaceSelector.
func nsPeer(sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: sel}
}

// podNSPeer is a peer with both selectors (AND).
func podNSPeer(pods, namespaces *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: pods, NamespaceSelector: namespaces}
}

// cidrPeer is an ipBlock peer.
func cidrPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

// port is a numeric port without protocol (TCP by default).
func port(n int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(n)
	return networkingv1.NetworkPolicyPort{Port: &p}
}

// protoPort is a numeric port with a protocol.
func protoPort(proto corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
	p := port(n)
	p.Protocol = &proto
	return p
}

// protoOnly is a port entry with a protocol and no port: every port of that protocol.
func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// portRange is a port entry from lo to hi inclusive.
func portRange(proto corev1.Protocol, lo, hi int32) networkingv1.NetworkPolicyPort {
	p := protoPort(proto, lo)
	p.EndPort = &hi
	return p
}

// namedPort is a named port without protocol (TCP by default).
func namedPort(name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Port: &p}
}

// protoNamedPort is a named port with a protocol.
func protoNamedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	p := namedPort(name)
	p.Protocol = &proto
	return p
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

// expectation is an expected reachability matrix built the way upstream e2e builds one:
// everything allowed, then cells switched by patterns such as "x/a", "x/*" or "*/*".
type expectation struct {
	names   []string
	allowed map[[2]string]bool
}

// expectAll starts an expectation over the model pods with every cell allowed.
func expectAll() *expectation {
	e := &expectation{allowed: map[[2]string]bool{}}
	for _, ns := range modelNamespaces() {
		for _, pod := range modelPods() {
			e.names = append(e.names, ns+"/"+pod)
		}
	}
	for _, a := range e.names {
		for _, b := range e.names {
			e.allowed[[2]string{a, b}] = true
		}
	}
	return e
}

// set switches every cell whose source matches fromPattern and destination toPattern.
func (e *expectation) set(fromPattern, toPattern string, ok bool) *expectation {
	for _, a := range e.names {
		for _, b := range e.names {
			if matchName(fromPattern, a) && matchName(toPattern, b) {
				e.allowed[[2]string{a, b}] = ok
			}
		}
	}
	return e
}

// ingress switches every cell towards the pods matching pattern.
func (e *expectation) ingress(pattern string, ok bool) *expectation { return e.set("*/*", pattern, ok) }

// egress switches every cell from the pods matching pattern.
func (e *expectation) egress(pattern string, ok bool) *expectation { return e.set(pattern, "*/*", ok) }

// matchName reports whether name matches a path.Match pattern such as "x/*".
func matchName(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// matrix renders the expectation for probe. Loopback cells are allowed: upstream e2e ignores
// them and the evaluator allows them (spec §2.12).
func (e *expectation) matrix(probe Probe) Matrix {
	eps := make([]Endpoint, len(e.names))
	for i, name := range e.names {
		ns, pod, _ := strings.Cut(name, "/")
		eps[i] = Endpoint{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pod}}}
	}
	m := NewMatrix(probe, eps)
	for i, a := range e.names {
		for j, b := range e.names {
			m.Allowed[i][j] = a == b || e.allowed[[2]string{a, b}]
		}
	}
	return m
}

// assertMatrix compares two renderings and, on a mismatch, logs got's verdict of each cell
// that differs.
func assertMatrix(t *testing.T, want, got Matrix) {
	t.Helper()
	if assert.Equal(t, want.String(), got.String()) {
		return
	}
	for i := range want.Allowed {
		for j := range want.Allowed[i] {
			if want.Allowed[i][j] != got.Allowed[i][j] && got.Verdicts != nil {
				t.Logf("%s -> %s: %s", got.Endpoints[i], got.Endpoints[j], got.Verdicts[i][j])
			}
		}
	}
}

// addr parses an address for a test table.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
