package netpol

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Chain, ipset and mark names shared with kube-router, so K3s's documented
// cleanup commands and kube-router's own stale-object sweep recognise what we program.
const (
	// ChainInput, ChainForward and ChainOutput are the top-level chains jumped to from
	// position 1 of the filter table's INPUT, FORWARD and OUTPUT chains.
	ChainInput   = "KUBE-ROUTER-INPUT"
	ChainForward = "KUBE-ROUTER-FORWARD"
	ChainOutput  = "KUBE-ROUTER-OUTPUT"
	// ChainDefault marks traffic of a direction no policy isolates.
	ChainDefault = "KUBE-NWPLCY-DEFAULT"
	// ChainCommon holds the rules every pod chain starts with: conntrack and ICMP.
	ChainCommon = "KUBE-NWPLCY-COMMON"
	// ChainTail ends every top-level chain: default deny of unprogrammed pods, then
	// ACCEPT of traffic every pod chain passed.
	ChainTail = "KUBE-NWPLCY-TAIL"

	// podChainPrefix and policyChainPrefix start the per-pod and per-policy chains.
	podChainPrefix    = "KUBE-POD-FW-"
	policyChainPrefix = "KUBE-NWPLCY-"
	// srcSetPrefix and dstSetPrefix start every ipset we own; ipv6SetPrefix is prepended for
	// IPv6 sets.
	srcSetPrefix  = "KUBE-SRC-"
	dstSetPrefix  = "KUBE-DST-"
	ipv6SetPrefix = "inet6:"
	// kubeRouterLocalPods is kube-router's fixed-name set of programmed local pods. Ours is
	// named like our other pod sets (see tailChain); Cleanup still destroys a leftover from
	// kube-router.
	kubeRouterLocalPods = "kube-router-local-pods"

	// markMatched is set by any allow rule of the pod chain being traversed and cleared at its
	// end; markAccepted means every pod chain on the way passed the packet.
	markMatched  = "0x10000/0x10000"
	markAccepted = "0x20000/0x20000"
)

// builtinChains pairs each built-in filter chain with the top-level chain it jumps to.
func builtinChains() [3][2]string {
	return [3][2]string{{"INPUT", ChainInput}, {"FORWARD", ChainForward}, {"OUTPUT", ChainOutput}}
}

// nameHash returns the first 16 characters of base32(sha256(parts joined by NUL)), the
// suffix kube-router uses for its names. The NUL separator keeps ("ab","c") and
// ("a","bc") apart. Names are derived from content or identity only, never from a sync
// counter, so an unchanged state renders byte-identical text.
func nameHash(parts ...string) string {
	// Joined and encoded in stack buffers: a 10× compile names 28,000 chains and sets, and
	// the join, its byte copy and the full encoding were garbage among what the cache keeps.
	var joined [256]byte
	b := joined[:0]
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	h := sha256.Sum256(b)
	var encoded [56]byte // base32 of 32 bytes
	base32.StdEncoding.Encode(encoded[:], h[:])
	return string(encoded[:16])
}

// podGroupChainName names the chain one direction of a group of local pods goes through: the
// pods the same policy chains of that direction select. Pods join and leave the group's set
// (podGroupSetName), so a pod that starts beside others of its kind changes set members only,
// and no iptables commit is needed (every commit that adds a rule revalidates the whole jump
// graph, which costs tens of milliseconds on a large table). policyChains are in the order the
// chain jumps to them.
func podGroupChainName(family corev1.IPFamily, direction string, policyChains []string) string {
	parts := make([]string, 0, len(policyChains)+3)
	parts = append(parts, "pods", string(family), direction)
	return podChainPrefix + nameHash(append(parts, policyChains...)...)
}

// podGroupSetName names the set of the addresses of the pods whose direction goes through
// chain: matched as destination (KUBE-DST-) for ingress, as source (KUBE-SRC-) for egress.
func podGroupSetName(family corev1.IPFamily, direction, chain string) string {
	prefix := srcSetPrefix
	if direction == dirIngress {
		prefix = dstSetPrefix
	}
	return identitySetName(prefix, family, setTypeIP, "pods "+chain)
}

// policyChainName names the chain holding one direction's rules of a policy in one family.
// kube-router keeps both directions in one chain, which lets ingress rules satisfy egress
// ("direction conflation"); one chain per direction rules that out.
func policyChainName(family corev1.IPFamily, namespace, name, direction string) string {
	return policyChainPrefix + nameHash("policy", string(family), namespace, name, direction)
}

// setName names a set by its type, family and sorted entries, for sets whose content is fixed
// by the policy alone (ipBlocks): the content never changes under the name, so a changed
// ipBlock is a new set that the rules are repointed to in one atomic iptables-restore
// (as kube-router swaps its sets), and rules with equal blocks share one set.
func setName(prefix string, family corev1.IPFamily, typ string, entries []string) string {
	parts := make([]string, 0, len(entries)+2)
	parts = append(parts, string(family), typ)
	parts = append(parts, entries...)
	return familySetName(prefix, family, nameHash(parts...))
}

// identitySetName names a set by what it stands for (the pods some selectors select, the pods
// serving a named port, the programmed local pods), for sets whose members follow pods. The
// name, and so every rule that references it, stays the same while pods come and go; only
// the members change, in place (Dataplane.Apply). Naming these by content would make every
// pod event create new sets and rewrite every chain that uses them: hundreds of chains on
// the workload of record. The "identity" part keeps these names apart from content names.
func identitySetName(prefix string, family corev1.IPFamily, typ, identity string) string {
	return familySetName(prefix, family, nameHash(string(family), typ, "identity", identity))
}

// familySetName prepends the IPv6 marker to an IPv6 set's name.
func familySetName(prefix string, family corev1.IPFamily, hash string) string {
	name := prefix + hash
	if family == corev1.IPv6Protocol {
		name = ipv6SetPrefix + name
	}
	return name
}

// isOwnChain reports whether a filter-table chain is one netpol creates, or kube-router's
// network policy controller created under the same names. Other KUBE-ROUTER-* chains belong
// to kube-router's service proxy (KUBE-ROUTER-SERVICES, jumped to from INPUT) or another
// component and are never touched: owning the whole prefix made every Apply remove them.
func isOwnChain(name string) bool {
	switch name {
	case ChainInput, ChainForward, ChainOutput, ChainDefault, ChainCommon, ChainTail:
		return true
	}
	return hasHashSuffix(name, podChainPrefix) || hasHashSuffix(name, policyChainPrefix)
}

// isTopLevelChain reports whether name is one of the chains the built-in chains jump to.
func isTopLevelChain(name string) bool {
	return name == ChainInput || name == ChainForward || name == ChainOutput
}

// isOwnSet reports whether an ipset is one we (or kube-router's network policy controller)
// create; kube-router's other sets (kube-router-svip, kube-router-pod-subnets, ...) are not.
func isOwnSet(name string) bool {
	name = strings.TrimPrefix(name, ipv6SetPrefix)
	return strings.HasPrefix(name, srcSetPrefix) || strings.HasPrefix(name, dstSetPrefix) || name == kubeRouterLocalPods
}

// hasHashSuffix reports whether name is prefix followed by a nameHash.
func hasHashSuffix(name, prefix string) bool {
	hash, ok := strings.CutPrefix(name, prefix)
	return ok && len(hash) == 16 && strings.Trim(hash, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
}

// setFamily returns the family of one of our sets, from its name.
func setFamily(name string) corev1.IPFamily {
	if strings.HasPrefix(name, ipv6SetPrefix) {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}
