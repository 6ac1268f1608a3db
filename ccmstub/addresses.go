package ccmstub

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// InvalidValue is one item of an address annotation or legacy label that the stub could not use.
// The rest of the node's addresses are still used; the controller reports each InvalidValue in
// a Warning Event on the Node.
type InvalidValue struct {
	// Key is the annotation or label the item came from.
	Key string
	// Label is true when the item came from a legacy label rather than an annotation.
	Label bool
	// Err says what is wrong with the item, naming it.
	Err error
}

// String names the source and the problem, for Events and logs.
func (v InvalidValue) String() string {
	kind := "annotation"
	if v.Label {
		kind = "label"
	}
	return fmt.Sprintf("%s %s: %v", kind, v.Key, v.Err)
}

// nodeAddresses builds a Node's status.addresses from the annotations its agent writes, with the
// legacy labels as fallback, in K3s's order: InternalIP, ExternalIP, InternalDNS,
// ExternalDNS, Hostname. Within a type the items keep their written order, which is meaningful:
// the first IP's family is the node's primary family, so nothing is sorted. Unlike K3s, items
// are validated (bad ones are returned as InvalidValues and left out), IPs are written in
// canonical form and repeats are dropped. Without a hostname annotation or label the kubelet's
// own Hostname addresses are kept, as the upstream cloud-node controller does.
func nodeAddresses(node *corev1.Node, keys Keys) ([]corev1.NodeAddress, []InvalidValue) {
	var (
		out     []corev1.NodeAddress
		seen    = map[corev1.NodeAddress]bool{}
		invalid []InvalidValue
	)
	// A set keeps de-duplication linear: an annotation may hold any number of items.
	add := func(typ corev1.NodeAddressType, addr string) {
		a := corev1.NodeAddress{Type: typ, Address: addr}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	// items returns the annotation's comma items, or else the legacy label's single value.
	items := func(key string, legacyLabel bool) ([]string, bool) {
		if v := strings.TrimSpace(node.Annotations[key]); v != "" {
			var list []string
			for item := range strings.SplitSeq(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					list = append(list, item)
				}
			}
			return list, false
		}
		if legacyLabel {
			if v := strings.TrimSpace(node.Labels[key]); v != "" {
				return []string{v}, true
			}
		}
		return nil, false
	}
	ips := func(typ corev1.NodeAddressType, key string) {
		list, fromLabel := items(key, true)
		for _, item := range list {
			a, err := parseIP(item)
			if err != nil {
				invalid = append(invalid, InvalidValue{Key: key, Label: fromLabel, Err: err})
				continue
			}
			add(typ, a.String())
		}
	}
	names := func(typ corev1.NodeAddressType, key string, legacyLabel bool) {
		list, fromLabel := items(key, legacyLabel)
		for _, item := range list {
			if err := checkDNSName(item); err != nil {
				invalid = append(invalid, InvalidValue{Key: key, Label: fromLabel, Err: err})
				continue
			}
			add(typ, item)
		}
	}

	ips(corev1.NodeInternalIP, keys.InternalIP)
	ips(corev1.NodeExternalIP, keys.ExternalIP)
	names(corev1.NodeInternalDNS, keys.InternalDNS, false)
	names(corev1.NodeExternalDNS, keys.ExternalDNS, false)
	// The hostname is one value, not a list: a comma in it makes it invalid.
	host, fromLabel := strings.TrimSpace(node.Annotations[keys.Hostname]), false
	if host == "" {
		host, fromLabel = strings.TrimSpace(node.Labels[keys.Hostname]), true
	}
	switch err := checkDNSName(host); {
	case host == "":
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeHostName {
				add(corev1.NodeHostName, a.Address)
			}
		}
	case err != nil:
		invalid = append(invalid, InvalidValue{Key: keys.Hostname, Label: fromLabel, Err: err})
	default:
		add(corev1.NodeHostName, host)
	}
	return out, invalid
}

// hasInternalIP reports whether addrs hold an InternalIP: K3s's condition (PR #4218) for a node
// whose agent has annotated it, before which the node must stay tainted.
func hasInternalIP(addrs []corev1.NodeAddress) bool {
	for _, a := range addrs {
		if a.Type == corev1.NodeInternalIP {
			return true
		}
	}
	return false
}

// formatAddresses renders addresses for Events: "InternalIP 10.0.0.1, Hostname node-a".
func formatAddresses(addrs []corev1.NodeAddress) string {
	parts := make([]string, 0, len(addrs))
	for _, a := range addrs {
		parts = append(parts, string(a.Type)+" "+a.Address)
	}
	return strings.Join(parts, ", ")
}
