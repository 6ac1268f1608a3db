package netpoltest

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The model follows the upstream e2e one: namespaces x, y, z labelled ns=<name>, pods a, b, c
// labelled pod=<name>, one container per port and protocol, named cont-<port>-<proto>,
// serving 80 and 81 on TCP, UDP and SCTP through container ports named serve-<port>-<proto>.

// NodeName is the node the model's pods run on unless a tweak moves them.
const NodeName = "node-1"

// Namespaces and PodNames name the model's namespaces and the pods of each.
func Namespaces() []string { return []string{"x", "y", "z"} }
func PodNames() []string   { return []string{"a", "b", "c"} }

// PodKeys returns "x/a", "x/b", ..., "z/c": every model pod, in matrix order.
func PodKeys() []string {
	var out []string
	for _, ns := range Namespaces() {
		for _, pod := range PodNames() {
			out = append(out, ns+"/"+pod)
		}
	}
	return out
}

// modelOctet gives the address octet of a model namespace or pod name, 0 for other names.
func modelOctet(name string) int {
	if len(name) != 1 {
		return 0
	}
	return 1 + max(strings.Index("xyz", name), strings.Index("abcd", name))
}

// modelAddrs returns the default IPv4 and IPv6 addresses of pod ns/name: 10.0.<ns>.<pod> and
// fd00::<ns>:<pod>, or nil outside the model's names (pod d included).
func modelAddrs(ns, name string) []string {
	n, p := modelOctet(ns), modelOctet(name)
	if n == 0 || p == 0 {
		return nil
	}
	return []string{fmt.Sprintf("10.0.%d.%d", n, p), fmt.Sprintf("fd00::%d:%d", n, p)}
}

// Namespace builds a namespace labelled ns=<name> and kubernetes.io/metadata.name=<name>.
func Namespace(name string, tweaks ...func(*corev1.Namespace)) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"ns": name, corev1.LabelMetadataName: name},
	}}
	for _, tweak := range tweaks {
		tweak(ns)
	}
	return ns
}

// WithNamespaceLabels adds label pairs k1, v1, k2, v2, ... to a namespace.
func WithNamespaceLabels(kv ...string) func(*corev1.Namespace) {
	return func(ns *corev1.Namespace) {
		for i := 0; i+1 < len(kv); i += 2 {
			ns.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Pod builds a Running pod on NodeName labelled pod=<name>, serving the model's six ports,
// with the model's dual-stack addresses when ns and name are part of the model.
func Pod(ns, name string, tweaks ...func(*corev1.Pod)) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod": name}},
		Spec:       corev1.PodSpec{NodeName: NodeName},
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
	WithIPs(modelAddrs(ns, name)...)(pod)
	for _, tweak := range tweaks {
		tweak(pod)
	}
	return pod
}

// WithLabels adds label pairs k1, v1, ... to a pod.
func WithLabels(kv ...string) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		for i := 0; i+1 < len(kv); i += 2 {
			pod.Labels[kv[i]] = kv[i+1]
		}
	}
}

// WithIPs replaces a pod's addresses; the first is status.podIP.
func WithIPs(ips ...string) func(*corev1.Pod) {
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

// Addresses places the model's pods for the cases that name addresses (the ipBlock ones):
// where each pod is, and a range holding every pod.
type Addresses struct {
	// Pods maps "x/a" to the pod's addresses, at most one per family.
	Pods map[string][]netip.Addr
	// Ranges hold every model pod, at most one per family.
	Ranges []netip.Prefix
}

// ModelAddresses are the addresses Pod gives the model's pods, in the ranges 10.0.0.0/16 and
// fd00::/64.
func ModelAddresses() Addresses {
	a := Addresses{Pods: map[string][]netip.Addr{},
		Ranges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/64")}}
	for _, key := range PodKeys() {
		ns, name, _ := strings.Cut(key, "/")
		for _, s := range modelAddrs(ns, name) {
			a.Pods[key] = append(a.Pods[key], netip.MustParseAddr(s))
		}
	}
	return a
}

// host returns pod key's address of family as a single-address prefix ("10.0.2.2/32"), and
// false when the pod has none.
func (a Addresses) host(key string, family corev1.IPFamily) (string, bool) {
	for _, ip := range a.Pods[key] {
		if familyOf(ip) == family {
			return netip.PrefixFrom(ip, ip.BitLen()).String(), true
		}
	}
	return "", false
}

// podRange returns the range of family, and false when there is none.
func (a Addresses) podRange(family corev1.IPFamily) (string, bool) {
	for _, p := range a.Ranges {
		if familyOf(p.Addr()) == family {
			return p.Masked().String(), true
		}
	}
	return "", false
}

// familyOf returns ip's family.
func familyOf(ip netip.Addr) corev1.IPFamily {
	if ip.Unmap().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}
