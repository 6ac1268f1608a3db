package reference

// This file is the reference evaluator of NetworkPolicy semantics: given the API objects, is a
// connection from one endpoint to another on a port and protocol allowed, and why. It is the
// oracle the dataplane tests compare real packets with, so it follows the Kubernetes API field
// by field and shares no code with the compiler that programs the kernel; keep it
// that way, or a bug in shared code would pass both sides of every test.

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ErrInvalidConnection is returned by Evaluate when the connection cannot exist: an endpoint
// without an address of the connection's family, mixed families, an IP the pod does not hold,
// an unknown protocol or a port outside 1-65535.
var ErrInvalidConnection = errors.New("invalid connection")

// ErrInvalidPolicy is returned by Evaluate for a NetworkPolicy the API server would reject in
// a way whose meaning is not defined: an unparsable selector or CIDR, a peer with no field or
// with ipBlock and a selector, an endPort without a numeric port or below it.
var ErrInvalidPolicy = errors.New("invalid NetworkPolicy")

// Cluster is the API state a connection is judged against. Pods are not listed: a connection
// names its two endpoints, and no other pod can change its fate.
type Cluster struct {
	// Namespaces supplies the labels namespaceSelectors read. A namespace missing here is
	// treated as carrying only the kubernetes.io/metadata.name label the API server sets.
	Namespaces []*corev1.Namespace
	// Policies are the NetworkPolicies of every namespace, in any order.
	Policies []*networkingv1.NetworkPolicy
}

// Connection is one connection attempt, judged as its first packet.
type Connection struct {
	// Src opens the connection; Dst accepts it.
	Src, Dst Endpoint
	// Protocol is TCP, UDP or SCTP; empty means TCP.
	Protocol corev1.Protocol
	// Port is the destination port.
	Port int32
	// Family picks the address family when neither endpoint sets IP. Empty means the family
	// of the destination pod's primary address (the source pod's if the destination has none).
	Family corev1.IPFamily
}

// String renders the connection as "src -> dst PROTO/port".
func (c Connection) String() string {
	return fmt.Sprintf("%s -> %s %s/%d", c.Src, c.Dst, orTCP(c.Protocol), c.Port)
}

// Evaluate reports whether the policies of cluster allow conn, and why. It reads its inputs
// and never modifies them.
//
// The connection needs both the source's egress and the destination's ingress,
// each decided from that direction's rules alone. A pod is isolated for a direction once any
// policy in its namespace selects it and lists that direction in its effective policyTypes;
// an isolated pod accepts (or sends) only what at least one rule of those policies allows,
// and the rules of all selecting policies are OR-ed (concepts page: "Network policies do not
// conflict; they are additive").
func Evaluate(cluster Cluster, conn Connection) (Verdict, error) {
	ev, err := newEvaluator(cluster)
	if err != nil {
		return Verdict{}, err
	}
	return ev.evaluate(conn)
}

// evaluator holds a Cluster parsed once, so a reachability matrix parses it only once.
type evaluator struct {
	policies []parsedPolicy
	nsLabels namespaceLabels
}

// newEvaluator parses every policy of cluster, sorted by namespace and name so verdicts do
// not depend on input order.
func newEvaluator(cluster Cluster) (*evaluator, error) {
	ev := &evaluator{nsLabels: newNamespaceLabels(cluster.Namespaces)}
	var errs []error
	for _, np := range cluster.Policies {
		p, err := parsePolicy(np)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ev.policies = append(ev.policies, p)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(ev.policies, func(a, b parsedPolicy) int {
		return cmp.Or(cmp.Compare(a.ref.Namespace, b.ref.Namespace), cmp.Compare(a.ref.Name, b.ref.Name))
	})
	return ev, nil
}

// evaluate judges one connection.
func (ev *evaluator) evaluate(conn Connection) (Verdict, error) {
	proto := orTCP(conn.Protocol)
	switch proto {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		return Verdict{}, fmt.Errorf("%w: %s: unknown protocol %q", ErrInvalidConnection, conn, conn.Protocol)
	}
	if conn.Port < 1 || conn.Port > 65535 {
		return Verdict{}, fmt.Errorf("%w: %s: port out of range", ErrInvalidConnection, conn)
	}
	src, dst, err := resolveEndpoints(conn)
	if err != nil {
		return Verdict{}, err
	}
	p := resolvedConn{src: src, dst: dst, proto: proto, port: conn.Port}
	v := Verdict{
		Egress:  ev.decide(networkingv1.PolicyTypeEgress, p),
		Ingress: ev.decide(networkingv1.PolicyTypeIngress, p),
	}
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v, nil
}

// resolvedConn is a connection with its endpoints resolved.
type resolvedConn struct {
	src, dst resolvedEndpoint
	proto    corev1.Protocol
	port     int32
}

// decide judges one direction of p: the source's egress or the destination's ingress.
func (ev *evaluator) decide(dir networkingv1.PolicyType, p resolvedConn) Decision {
	// subject is the pod whose policies decide; remote is the peer its rules must name.
	subject, remote := p.dst, p.src
	if dir == networkingv1.PolicyTypeEgress {
		subject, remote = p.src, p.dst
	}
	switch subject.kind {
	case kindAddress:
		return Decision{Allowed: true, Reason: ReasonNotAPod}
	case kindHostNetwork:
		return Decision{Allowed: true, Reason: ReasonHostNetwork}
	case kindFinished:
		return Decision{Allowed: true, Reason: ReasonPodFinished}
	}
	var d Decision
	for i := range ev.policies {
		pol := &ev.policies[i]
		isolates, rules := pol.isolatesIngress, pol.ingress
		if dir == networkingv1.PolicyTypeEgress {
			isolates, rules = pol.isolatesEgress, pol.egress
		}
		if !isolates || !pol.selects(subject.pod) {
			continue
		}
		d.SelectedBy = append(d.SelectedBy, pol.ref)
		for j := range rules {
			if ev.ruleAllows(pol.ref.Namespace, &rules[j], remote, p) {
				d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: pol.ref, Index: j})
			}
		}
	}
	// The two exemptions below only decide when the rules would deny, so the reason names
	// what actually let the connection through.
	switch {
	case len(d.SelectedBy) == 0:
		// API (policyTypes, podSelector): a pod no policy of this direction selects is not
		// isolated for it and all its traffic in that direction is allowed.
		d.Allowed, d.Reason = true, ReasonNotIsolated
	case len(d.AllowedBy) > 0:
		d.Allowed, d.Reason = true, ReasonAllowedByRule
	case isLoopback(p):
		// API concepts page, "What you can't do": "Pods cannot currently block localhost
		// access". A pod reaching its own IP never leaves its network namespace, so no
		// dataplane sees it; upstream e2e ignores these cells.
		d.Allowed, d.Reason = true, ReasonLoopback
	case dir == networkingv1.PolicyTypeIngress && remote.node != "" && remote.node == subject.pod.Spec.NodeName:
		// API (spec.ingress): "Traffic is allowed to a pod if there are no NetworkPolicies
		// selecting the pod ..., OR if the traffic source is the pod's local node, OR if the
		// traffic matches at least one ingress rule". Kubelet probes come from there.
		// spec.egress has no such clause: egress to the node stays subject to policy.
		d.Allowed, d.Reason = true, ReasonFromOwnNode
	default:
		d.Reason = ReasonNoRuleAllows
	}
	return d
}

// ruleAllows reports whether one rule of a policy in policyNS matches the remote end and the
// destination port. API (NetworkPolicyIngressRule): "The traffic must match both ports and
// from." (egress: "both ports and to"). A rule's peers are OR-ed: "If this field is present
// and contains at least one item, this rule allows traffic only if the traffic matches at
// least one item in the from list."
func (ev *evaluator) ruleAllows(policyNS string, rule *parsedRule, remote resolvedEndpoint, p resolvedConn) bool {
	if !portsMatch(rule.ports, p.dst, p.proto, p.port) {
		return false
	}
	if rule.anyPeer {
		return true
	}
	for i := range rule.peers {
		if rule.peers[i].matches(remote, policyNS, ev.nsLabels) {
			return true
		}
	}
	return false
}

// isLoopback reports whether p goes from a pod to itself.
func isLoopback(p resolvedConn) bool {
	s, d := p.src.pod, p.dst.pod
	return s != nil && d != nil && s.Namespace == d.Namespace && s.Name == d.Name && p.src.ip == p.dst.ip
}
