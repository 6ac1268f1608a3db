package netpol

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Directions as they appear in chain-name hashes and comments.
const (
	dirIngress = "ingress"
	dirEgress  = "egress"
)

// policyInfo is a NetworkPolicy parsed for the compiler.
type policyInfo struct {
	namespace, name string
	// selector picks the targets among the pods of namespace.
	selector labels.Selector
	// isolatesIngress and isolatesEgress are the effective policyTypes.
	isolatesIngress, isolatesEgress bool
	ingress, egress                 []ruleInfo
}

// ruleInfo is one ingress or egress rule.
type ruleInfo struct {
	// anyPeer: from/to is empty, so every peer matches.
	anyPeer bool
	// selectorPeers and blocks are the valid peers; a rule with peers of which none is valid
	// matches nothing (fail closed).
	selectorPeers []selectorPeer
	blocks        []blockPeer
	// blockNets4 and blockNets6 are the prefixes blocks admit in each family, computed once
	// per parse (resolveBlocks): the excepts are already subtracted.
	blockNets4, blockNets6 []netip.Prefix
	// anyPort: ports is empty, so every port and protocol matches.
	anyPort bool
	ports   []portInfo
}

// selectorPeer is a peer with a podSelector, a namespaceSelector or both; a nil selector is
// an unset field, which is not the same as an empty one.
type selectorPeer struct {
	pods, namespaces labels.Selector
}

// blockPeer is an ipBlock peer.
type blockPeer struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

// portInfo is one valid NetworkPolicyPort with the API defaults applied.
type portInfo struct {
	proto corev1.Protocol
	// named is the port name, or "" for a numeric or absent port.
	named string
	// first and last bound a numeric port range; 0 when the entry has no port (every port of
	// proto).
	first, last int32
}

// ErrPolicyTooLarge is the kind of a PolicyError for a NetworkPolicy Compile refused whole
// because its ipBlocks need more ipset entries than one policy may use
// (maxPolicyBlockEntries).
var ErrPolicyTooLarge = errors.New("NetworkPolicy too large")

// ErrInvalidPolicy is the kind of a PolicyError for a NetworkPolicy the API server would
// reject in a way whose meaning is not defined: an unparsable selector or CIDR, a peer with no
// field or with ipBlock and a selector, an endPort without a numeric port or below it.
var ErrInvalidPolicy = errors.New("invalid NetworkPolicy")

// PolicyError is one problem Compile found in a NetworkPolicy: a part the API server would
// have rejected, which is left out, or a policy too large to enforce, whose rules are all
// left out. It names the policy, so the controller can put a Warning Event on it, and
// errors.Is(err, Err) holds for it.
type PolicyError struct {
	// Namespace and Name identify the NetworkPolicy.
	Namespace, Name string
	// Problem says which field is wrong and why.
	Problem string
	// Err is the kind of problem: ErrInvalidPolicy (also when nil) or ErrPolicyTooLarge.
	Err error
}

// Error renders the problem as "invalid NetworkPolicy ns/name: field: reason", or as
// "NetworkPolicy too large ns/name: reason".
func (e *PolicyError) Error() string {
	return fmt.Sprintf("%v %s/%s: %s", e.Unwrap(), e.Namespace, e.Name, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalidPolicy) or errors.Is(err, ErrPolicyTooLarge) true.
func (e *PolicyError) Unwrap() error { return cmp.Or(e.Err, ErrInvalidPolicy) }

// selectorCache holds the selectors one compile parsed, by their serialized form: policies
// repeat selectors (the workload's 10,000 policies use a few dozen), and a parsed selector
// is never modified, so they share one. Parse errors are not kept. A nil cache parses
// every time.
type selectorCache map[string]labels.Selector

// parse returns ls as a Selector, as metav1.LabelSelectorAsSelector does.
func (sc selectorCache) parse(ls *metav1.LabelSelector) (labels.Selector, error) {
	if sc == nil {
		return metav1.LabelSelectorAsSelector(ls)
	}
	// Marshal writes matchLabels in key order, so equal selectors have equal keys.
	key, err := ls.Marshal()
	if err != nil {
		return metav1.LabelSelectorAsSelector(ls)
	}
	if sel, ok := sc[string(key)]; ok {
		return sel, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err == nil {
		sc[string(key)] = sel
	}
	return sel, err
}

// ruleCache holds the rule lists of the policies one compile parsed without a problem, by
// their serialized spec.ingress and spec.egress: policies repeat their rules (the workload's
// 10,000 policies have about seventy distinct lists), and parsed rules are never modified,
// so they share one. A nil cache parses every time.
type ruleCache map[string]ruleLists

// ruleLists are a policy's parsed ingress and egress rules.
type ruleLists struct{ ingress, egress []ruleInfo }

// rulesKey returns the serialized rules of np, false when they do not serialize.
func rulesKey(np *networkingv1.NetworkPolicy) (string, bool) {
	spec := networkingv1.NetworkPolicySpec{Ingress: np.Spec.Ingress, Egress: np.Spec.Egress}
	b, err := spec.Marshal()
	return string(b), err == nil
}

// parsePolicyInfo parses np, returning nil when its podSelector is unparsable (it then
// selects nothing) and one error per part left out. Selectors and rule lists already in sc
// and rc are shared, not parsed again.
func parsePolicyInfo(np *networkingv1.NetworkPolicy, sc selectorCache, rc ruleCache) (*policyInfo, []error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, &PolicyError{Namespace: np.Namespace, Name: np.Name, Problem: fmt.Sprintf(format, args...)})
	}
	sel, err := sc.parse(&np.Spec.PodSelector)
	if err != nil {
		bad("spec.podSelector: %v", err)
		return nil, errs
	}
	p := &policyInfo{namespace: np.Namespace, name: np.Name, selector: sel}
	// Only an empty policyTypes is defaulted, to Ingress plus Egress iff spec.egress
	// is non-empty; read the field, never infer from the rule lists.
	if len(np.Spec.PolicyTypes) == 0 {
		p.isolatesIngress, p.isolatesEgress = true, len(np.Spec.Egress) > 0
	} else {
		p.isolatesIngress = slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		p.isolatesEgress = slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	}
	key, keyed := "", false
	if rc != nil {
		key, keyed = rulesKey(np)
	}
	if l, ok := rc[key]; keyed && ok {
		p.ingress, p.egress = l.ingress, l.egress
		return p, nil
	}
	for i, r := range np.Spec.Ingress {
		p.ingress = append(p.ingress, parseRuleInfo(fmt.Sprintf("spec.ingress[%d]", i), r.From, r.Ports, sc, bad))
	}
	for i, r := range np.Spec.Egress {
		p.egress = append(p.egress, parseRuleInfo(fmt.Sprintf("spec.egress[%d]", i), r.To, r.Ports, sc, bad))
	}
	if !p.resolveBlocks(maxPolicyBlockEntries) {
		// Refused, and failing closed: the policy keeps isolating the pods it selects in the
		// directions it names, with no rule of its own, so they get only what other policies
		// allow. Leaving the policy out instead would open those pods (a pod no policy
		// selects is not isolated), so a tenant could lift isolation by growing a policy.
		// Keeping the peers that fit the bound would enforce an arbitrary part of the policy,
		// decided by rule order; none is clearer, and the Event says so.
		p.ingress, p.egress = nil, nil
		errs = append(errs, &PolicyError{Namespace: np.Namespace, Name: np.Name, Err: ErrPolicyTooLarge,
			Problem: fmt.Sprintf("its ipBlocks need more than %d ipset entries, the most one policy may use; none of its rules are enforced and the pods it selects stay isolated", maxPolicyBlockEntries)})
	}
	if keyed && len(errs) == 0 {
		rc[key] = ruleLists{ingress: p.ingress, egress: p.egress}
	}
	return p, errs
}

// resolveBlocks subtracts the excepts of every rule's ipBlocks, in both families, once per
// parse. It reports false, having stopped early, when the whole policy would need more than
// limit set entries (shared set entries are counted once per rule).
func (p *policyInfo) resolveBlocks(limit int) bool {
	for _, rules := range [][]ruleInfo{p.ingress, p.egress} {
		for i := range rules {
			r := &rules[i]
			if len(r.blocks) == 0 {
				continue
			}
			var ok bool
			if r.blockNets4, ok = blockPrefixes(r.blocks, false, limit); !ok {
				return false
			}
			limit -= len(r.blockNets4)
			if r.blockNets6, ok = blockPrefixes(r.blocks, true, limit); !ok {
				return false
			}
			limit -= len(r.blockNets6)
		}
	}
	return true
}

// blockNets returns the prefixes the rule's ipBlocks admit in family fam.
func (r *ruleInfo) blockNets(fam corev1.IPFamily) []netip.Prefix {
	if fam == corev1.IPv6Protocol {
		return r.blockNets6
	}
	return r.blockNets4
}

// parseRuleInfo parses one rule's peers and ports, reporting invalid entries through bad.
func parseRuleInfo(path string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, sc selectorCache, bad func(string, ...any)) ruleInfo {
	r := ruleInfo{anyPeer: len(peers) == 0, anyPort: len(ports) == 0}
	for j := range peers {
		peer := &peers[j]
		at := fmt.Sprintf("%s.peers[%d]", path, j)
		hasSel := peer.PodSelector != nil || peer.NamespaceSelector != nil
		switch {
		case peer.IPBlock != nil && hasSel:
			bad("%s: ipBlock may not be combined with a selector", at)
		case peer.IPBlock != nil:
			b, err := parseBlockPeer(peer.IPBlock)
			if err != nil {
				bad("%s.ipBlock: %v", at, err)
				continue
			}
			r.blocks = append(r.blocks, b)
		case !hasSel:
			bad("%s: a peer must set podSelector, namespaceSelector or ipBlock", at)
		default:
			sp, err := parseSelectorPeer(peer, sc)
			if err != nil {
				bad("%s: %v", at, err)
				continue
			}
			r.selectorPeers = append(r.selectorPeers, sp)
		}
	}
	for j := range ports {
		pi, err := parsePortInfo(&ports[j])
		if err != nil {
			bad("%s.ports[%d]: %v", path, j, err)
			continue
		}
		r.ports = append(r.ports, pi)
	}
	return r
}

// parseSelectorPeer parses the selectors of a peer; an unset one stays nil.
func parseSelectorPeer(peer *networkingv1.NetworkPolicyPeer, sc selectorCache) (selectorPeer, error) {
	var sp selectorPeer
	var err error
	if peer.PodSelector != nil {
		if sp.pods, err = sc.parse(peer.PodSelector); err != nil {
			return sp, fmt.Errorf("podSelector: %w", err)
		}
	}
	if peer.NamespaceSelector != nil {
		if sp.namespaces, err = sc.parse(peer.NamespaceSelector); err != nil {
			return sp, fmt.Errorf("namespaceSelector: %w", err)
		}
	}
	return sp, nil
}

// parseBlockPeer parses an ipBlock, masking host bits as the kernel would.
func parseBlockPeer(b *networkingv1.IPBlock) (blockPeer, error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return blockPeer{}, fmt.Errorf("cidr: %w", err)
	}
	out := blockPeer{cidr: cidr.Masked()}
	for i, e := range b.Except {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return blockPeer{}, fmt.Errorf("except[%d]: %w", i, err)
		}
		out.except = append(out.except, p.Masked())
	}
	return out, nil
}

// parsePortInfo applies the API defaults to one port entry and validates it, as the API
// server does: protocol defaults to TCP; endPort needs a numeric port at or below it.
func parsePortInfo(p *networkingv1.NetworkPolicyPort) (portInfo, error) {
	pi := portInfo{proto: corev1.ProtocolTCP}
	if p.Protocol != nil && *p.Protocol != "" {
		pi.proto = *p.Protocol
	}
	switch pi.proto {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		return pi, fmt.Errorf("unknown protocol %q", pi.proto)
	}
	switch {
	case p.Port == nil:
		if p.EndPort != nil {
			return pi, fmt.Errorf("endPort requires port")
		}
	case p.Port.Type == intstr.String:
		if p.EndPort != nil {
			return pi, fmt.Errorf("endPort may not be used with named port %q", p.Port.StrVal)
		}
		pi.named = p.Port.StrVal
	default:
		pi.first, pi.last = p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			pi.last = *p.EndPort
		}
		if pi.first < 1 || pi.last > 65535 || pi.last < pi.first {
			return pi, fmt.Errorf("port range %d-%d is invalid", pi.first, pi.last)
		}
	}
	return pi, nil
}
