package reference

import (
	"fmt"
	"iter"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// validatePort rejects the port entries the API server refuses whose meaning the evaluator
// would otherwise have to guess: endPort without a numeric port, or below it.
func validatePort(path string, p *networkingv1.NetworkPolicyPort) error {
	if p.EndPort == nil {
		return nil
	}
	switch {
	case p.Port == nil:
		return fmt.Errorf("%s: endPort requires port", path)
	case p.Port.Type != intstr.Int:
		return fmt.Errorf("%s: endPort may not be used with a named port", path)
	case *p.EndPort < p.Port.IntVal:
		return fmt.Errorf("%s: endPort %d is below port %d", path, *p.EndPort, p.Port.IntVal)
	}
	return nil
}

// orTCP applies the API default of every protocol field the evaluator reads.
func orTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// portsMatch reports whether a rule's ports list lets a connection to port/proto of dst through.
//
// API (rule.ports): "If this field is empty or missing, this rule matches all ports (traffic
// not restricted by port). If this field is present and contains at least one item, then this
// rule allows traffic only if the traffic matches at least one port in the list." An empty
// list matches every protocol too, SCTP and UDP included.
func portsMatch(ports []networkingv1.NetworkPolicyPort, dst resolvedEndpoint, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for i := range ports {
		if portMatches(&ports[i], dst, proto, port) {
			return true
		}
	}
	return false
}

// portMatches reports whether one NetworkPolicyPort matches a connection to port/proto of dst.
//
// API (NetworkPolicyPort): "protocol represents the protocol (TCP, UDP, or SCTP) which traffic
// must match. If not specified, this field defaults to TCP." "port represents the port on the
// given protocol. This can either be a numerical or named port on a pod. If this field is not
// provided, this matches all port names and numbers." "endPort indicates that the range of
// ports from port to endPort if set, inclusive, should be allowed by the policy."
func portMatches(p *networkingv1.NetworkPolicyPort, dst resolvedEndpoint, proto corev1.Protocol, port int32) bool {
	want := corev1.ProtocolTCP
	if p.Protocol != nil {
		want = orTCP(*p.Protocol)
	}
	if want != proto {
		return false
	}
	switch {
	case p.Port == nil:
		return true
	case p.Port.Type == intstr.Int:
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		return p.Port.IntVal <= port && port <= end
	default:
		return servesNamedPort(dst, p.Port.StrVal, proto, port)
	}
}

// servesNamedPort reports whether dst is a pod whose container port called name, with
// protocol proto, has number port.
//
// A named port is resolved on the destination of the connection, for ingress and
// egress alike (on egress that is the peer, not the selected pod), matching name and protocol;
// each pod may map the name to its own number; a named port never matches an address that is
// not a selectable pod (external, node, hostNetwork or finished pod). Ports of sidecars (init
// containers with restartPolicy Always) count: they run beside the main containers.
func servesNamedPort(dst resolvedEndpoint, name string, proto corev1.Protocol, port int32) bool {
	pod := dst.selectable()
	if pod == nil {
		return false
	}
	for c := range servingContainers(pod) {
		for _, cp := range c.Ports {
			if cp.Name == name && orTCP(cp.Protocol) == proto && cp.ContainerPort == port {
				return true
			}
		}
	}
	return false
}

// servingContainers yields every container that runs for the pod's lifetime: the sidecar
// init containers (restartPolicy Always) and the containers. The reference evaluator keeps
// its own copy of this rule (Compile uses podspec.ServingContainers), so that it stays an
// independent statement of the behaviour the tests compare Compile against.
func servingContainers(pod *corev1.Pod) iter.Seq[*corev1.Container] {
	return func(yield func(*corev1.Container) bool) {
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways && !yield(c) {
				return
			}
		}
		for i := range pod.Spec.Containers {
			if !yield(&pod.Spec.Containers[i]) {
				return
			}
		}
	}
}
