package reference

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Reason says why one direction of a connection was allowed or denied.
type Reason string

const (
	// ReasonNotAPod: the endpoint is an address outside any pod, so no policy applies to it.
	ReasonNotAPod Reason = "NotAPod"
	// ReasonHostNetwork: the endpoint is a hostNetwork pod, judged as node traffic.
	ReasonHostNetwork Reason = "HostNetwork"
	// ReasonPodFinished: the endpoint is a Succeeded or Failed pod, which policies no longer
	// select.
	ReasonPodFinished Reason = "PodFinished"
	// ReasonNotIsolated: no policy of this direction selects the pod, so all traffic is allowed.
	ReasonNotIsolated Reason = "NotIsolated"
	// ReasonAllowedByRule: the pod is isolated and at least one rule allows the connection.
	ReasonAllowedByRule Reason = "AllowedByRule"
	// ReasonNoRuleAllows: the pod is isolated and no rule of the selecting policies allows it.
	ReasonNoRuleAllows Reason = "NoRuleAllows"
	// ReasonLoopback: an isolated pod talks to itself; no rule allows it, but policies cannot
	// block it.
	ReasonLoopback Reason = "Loopback"
	// ReasonFromOwnNode: traffic from the isolated destination pod's own node; no rule allows
	// it, but policies cannot block it.
	ReasonFromOwnNode Reason = "FromOwnNode"
)

// RuleRef names one rule: the index into spec.ingress or spec.egress of a policy.
type RuleRef struct {
	// Policy is the policy's namespace and name.
	Policy types.NamespacedName
	// Index is the rule's position in the direction's rule list.
	Index int
}

// Decision is the outcome of one direction: the source's egress or the destination's ingress.
type Decision struct {
	// Allowed reports whether this direction lets the connection through.
	Allowed bool
	// Reason says why.
	Reason Reason
	// SelectedBy lists the policies of this direction that select the endpoint, sorted. It is
	// empty unless the endpoint is a pod policies can select.
	SelectedBy []types.NamespacedName
	// AllowedBy lists every rule of SelectedBy that allows the connection, sorted.
	AllowedBy []RuleRef
}

// Verdict is Evaluate's answer for one connection: both directions must allow it.
type Verdict struct {
	// Allowed is Egress.Allowed && Ingress.Allowed.
	Allowed bool
	// Egress is the decision of the source's egress side.
	Egress Decision
	// Ingress is the decision of the destination's ingress side.
	Ingress Decision
}

// String renders the verdict in one line for test failures, e.g.
// "denied (egress: NotIsolated; ingress: NoRuleAllows, selected by x/deny-all)".
func (v Verdict) String() string {
	outcome := "denied"
	if v.Allowed {
		outcome = "allowed"
	}
	return fmt.Sprintf("%s (egress: %s; ingress: %s)", outcome,
		v.Egress.describe(networkingv1.PolicyTypeEgress), v.Ingress.describe(networkingv1.PolicyTypeIngress))
}

// describe renders one decision for Verdict.String.
func (d Decision) describe(dir networkingv1.PolicyType) string {
	var b strings.Builder
	b.WriteString(string(d.Reason))
	if len(d.AllowedBy) > 0 {
		b.WriteString(" by")
		for i, r := range d.AllowedBy {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %s[%d]", r.Policy, strings.ToLower(string(dir)), r.Index)
		}
	} else if len(d.SelectedBy) > 0 {
		b.WriteString(", selected by")
		for i, p := range d.SelectedBy {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" " + p.String())
		}
	}
	return b.String()
}
