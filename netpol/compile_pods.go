package netpol

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/k3snet/k3snet/internal/podspec"
)

// podInfo is a pod policies can select, with what the compiler reads from it.
type podInfo struct {
	pod *corev1.Pod
	// v6 is the pod's first IPv6 address, invalid when it has none; v4 its first IPv4
	// address when hasV4. An IPv4 address is kept in its four bytes (it has no zone), which
	// makes a cached pod 48 bytes instead of 64.
	v6    netip.Addr
	v4    [4]byte
	hasV4 bool
}

// namedContainerPort is one named container port of a pod.
type namedContainerPort struct {
	name   string
	proto  corev1.Protocol
	number int32
}

// newPodInfo keeps the pods a policy can select as target or peer:
// not hostNetwork (its address is the node's), not finished (its address may already belong
// to a new pod, kube-router#1056), and with at least one address. A pod refused still
// comes back in the info, without addresses.
func newPodInfo(pod *corev1.Pod) (podInfo, bool) {
	if pod.Spec.HostNetwork || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return podInfo{pod: pod}, false
	}
	info := podInfo{pod: pod}
	addrs := make([]string, 0, len(pod.Status.PodIPs)+1)
	for _, ip := range pod.Status.PodIPs {
		addrs = append(addrs, ip.IP)
	}
	addrs = append(addrs, pod.Status.PodIP)
	// A pod's address of a family is the first of that family in status.podIPs (kube-router
	// takes the same one).
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		a = a.Unmap()
		switch {
		case a.Is4() && !info.hasV4:
			info.v4, info.hasV4 = a.As4(), true
		case a.Is6() && !info.v6.IsValid():
			info.v6 = a
		}
	}
	if !info.hasV4 && !info.v6.IsValid() {
		return podInfo{pod: pod}, false
	}
	return info, true
}

// namedPorts returns the named container ports the pod serves. They are read from the pod
// when needed rather than kept: most pods' are never needed again, and the informer holds
// the pod anyway.
func (p *podInfo) namedPorts() []namedContainerPort {
	return slices.Collect(p.eachNamedPort)
}

// eachNamedPort yields the named container ports the pod serves, as namedPorts lists them,
// without a list: indexing every pod's ports would otherwise allocate one per pod.
func (p *podInfo) eachNamedPort(yield func(namedContainerPort) bool) {
	// Named ports are the containers' ports, sidecars (restartable init
	// containers) included since they serve for the pod's lifetime.
	for ctr := range podspec.ServingContainers(p.pod) {
		for _, cp := range ctr.Ports {
			if cp.Name == "" {
				continue
			}
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if !yield(namedContainerPort{name: cp.Name, proto: proto, number: cp.ContainerPort}) {
				return
			}
		}
	}
}

// key returns the pod's namespace and name.
func (p *podInfo) key() objKey { return objKey{p.pod.Namespace, p.pod.Name} }

// addr returns the pod's address of fam, invalid when it has none.
func (p *podInfo) addr(fam corev1.IPFamily) netip.Addr {
	switch {
	case fam == corev1.IPv6Protocol:
		return p.v6
	case p.hasV4:
		return netip.AddrFrom4(p.v4)
	default:
		return netip.Addr{}
	}
}

// indexNamespaceLabels maps each namespace to the labels namespaceSelectors match. The API
// server sets kubernetes.io/metadata.name on every namespace; objects that
// skipped it get the label here, on a copy.
func indexNamespaceLabels(namespaces []*corev1.Namespace) map[string]map[string]string {
	idx := make(map[string]map[string]string, len(namespaces))
	for _, ns := range namespaces {
		l := make(map[string]string, len(ns.Labels)+1)
		for k, v := range ns.Labels {
			l[k] = v
		}
		l[corev1.LabelMetadataName] = ns.Name
		idx[ns.Name] = l
	}
	return idx
}
