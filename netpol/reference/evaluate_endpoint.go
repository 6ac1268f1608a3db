package reference

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Endpoint is one end of a connection judged by Evaluate: a pod, or an address no pod holds
// (a client outside the cluster, a node).
type Endpoint struct {
	// Pod is the pod at this end, or nil for an address outside any pod. A hostNetwork pod or
	// a finished (Succeeded/Failed) pod is accepted here but is judged as the bare address it
	// uses, never as a pod.
	Pod *corev1.Pod
	// IP is the address this end uses. For a pod the zero value means "the pod's address of
	// the connection's family"; a set IP must be one of the pod's status.podIPs. An endpoint
	// without a pod must set it.
	IP netip.Addr
	// Node names the node whose host network owns IP, for an endpoint without a pod (node
	// traffic: kubelet probes, host daemons); ingress from a pod's own node is always allowed.
	// It is ignored when Pod is set: a hostNetwork pod is traffic of its spec.nodeName.
	Node string
}

// String names the endpoint as the reachability matrix does: "namespace/name" for a pod,
// else the address, followed by "@node" for node traffic.
func (e Endpoint) String() string {
	switch {
	case e.Pod != nil:
		return e.Pod.Namespace + "/" + e.Pod.Name
	case e.Node != "":
		return e.IP.String() + "@" + e.Node
	default:
		return e.IP.String()
	}
}

// endpointKind says how an endpoint takes part in policy selection.
type endpointKind int

const (
	// kindPod is a pod policies can select, as target and as peer.
	kindPod endpointKind = iota
	// kindAddress is an address outside any pod; only ipBlock peers match it.
	kindAddress
	// kindHostNetwork is a hostNetwork pod, judged as its node's address.
	kindHostNetwork
	// kindFinished is a Succeeded or Failed pod, whose address may already belong to a new
	// pod; judged as a bare address.
	kindFinished
)

// resolvedEndpoint is an Endpoint with its address fixed for one connection.
type resolvedEndpoint struct {
	kind endpointKind
	// pod is set for every kind but kindAddress; only kindPod lets selectors read it.
	pod *corev1.Pod
	ip  netip.Addr
	// node is the node owning ip when the endpoint is host traffic, else "".
	node string
}

// selectable returns the pod when policies may select it, else nil.
func (r resolvedEndpoint) selectable() *corev1.Pod {
	if r.kind == kindPod {
		return r.pod
	}
	return nil
}

// classify tells which part a pod plays in policy selection.
func classify(pod *corev1.Pod) endpointKind {
	switch {
	case pod == nil:
		return kindAddress
	case pod.Spec.HostNetwork:
		// A hostNetwork pod shares its node's address, so a dataplane cannot tell
		// it from node traffic. We treat it as node traffic: it is never a policy target and
		// podSelector/namespaceSelector peers never match it; ipBlock peers match its address.
		return kindHostNetwork
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		// A finished pod's IP may be reused by a new pod, so it must not carry
		// the old pod's labels into policy decisions.
		return kindFinished
	default:
		return kindPod
	}
}

// podAddrs lists a pod's addresses: status.podIPs, or status.podIP when podIPs is empty.
func podAddrs(pod *corev1.Pod) ([]netip.Addr, error) {
	raw := make([]string, 0, len(pod.Status.PodIPs))
	for _, ip := range pod.Status.PodIPs {
		raw = append(raw, ip.IP)
	}
	if len(raw) == 0 && pod.Status.PodIP != "" {
		raw = append(raw, pod.Status.PodIP)
	}
	addrs := make([]netip.Addr, 0, len(raw))
	for _, s := range raw {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: pod %s/%s has an unparsable IP %q", ErrInvalidConnection, pod.Namespace, pod.Name, s)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// familyOf returns the API's name for the address family of a.
func familyOf(a netip.Addr) corev1.IPFamily {
	if a.Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// resolveEndpoints fixes the address family of a connection and the address of each end.
// The family comes from conn.Family, else from an explicit IP, else from the destination
// pod's primary (first) address, else the source pod's.
func resolveEndpoints(conn Connection) (src, dst resolvedEndpoint, err error) {
	srcAddrs, err := endpointAddrs(conn.Src)
	if err != nil {
		return src, dst, err
	}
	dstAddrs, err := endpointAddrs(conn.Dst)
	if err != nil {
		return src, dst, err
	}
	family := conn.Family
	for _, ip := range []netip.Addr{conn.Src.IP, conn.Dst.IP} {
		if !ip.IsValid() {
			continue
		}
		if family != "" && familyOf(ip) != family {
			return src, dst, fmt.Errorf("%w: %s -> %s mixes address families", ErrInvalidConnection, conn.Src, conn.Dst)
		}
		family = familyOf(ip)
	}
	if family == "" {
		switch {
		case len(dstAddrs) > 0:
			family = familyOf(dstAddrs[0])
		case len(srcAddrs) > 0:
			family = familyOf(srcAddrs[0])
		default:
			return src, dst, fmt.Errorf("%w: %s -> %s: no endpoint has an address", ErrInvalidConnection, conn.Src, conn.Dst)
		}
	}
	if src, err = resolveEndpoint(conn.Src, srcAddrs, family); err != nil {
		return src, dst, err
	}
	dst, err = resolveEndpoint(conn.Dst, dstAddrs, family)
	return src, dst, err
}

// endpointAddrs lists the addresses e may use: the pod's, or its own IP.
func endpointAddrs(e Endpoint) ([]netip.Addr, error) {
	if e.Pod != nil {
		return podAddrs(e.Pod)
	}
	if !e.IP.IsValid() {
		return nil, fmt.Errorf("%w: an endpoint without a pod needs an IP", ErrInvalidConnection)
	}
	return []netip.Addr{e.IP}, nil
}

// resolveEndpoint picks e's address of family among addrs and classifies it.
func resolveEndpoint(e Endpoint, addrs []netip.Addr, family corev1.IPFamily) (resolvedEndpoint, error) {
	r := resolvedEndpoint{kind: classify(e.Pod), pod: e.Pod, node: e.Node}
	if e.Pod != nil {
		r.node = ""
		if r.kind == kindHostNetwork {
			r.node = e.Pod.Spec.NodeName
		}
	}
	for _, a := range addrs {
		if familyOf(a) != family {
			continue
		}
		if !e.IP.IsValid() || a == e.IP {
			r.ip = a
			return r, nil
		}
	}
	if e.IP.IsValid() {
		return r, fmt.Errorf("%w: %s does not hold %s", ErrInvalidConnection, e, e.IP)
	}
	return r, fmt.Errorf("%w: %s has no %s address", ErrInvalidConnection, e, family)
}
