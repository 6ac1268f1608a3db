package ccmstub

import (
	"net/netip"
	"strings"
	"testing"
)

// addressList returns n distinct IPv4 addresses from first, comma-joined, the last one
// repeating the first.
func addressList(first string, n int) string {
	items := make([]string, 0, n+1)
	a := netip.MustParseAddr(first)
	for range n {
		items = append(items, a.String())
		a = a.Next()
	}
	return strings.Join(append(items, items[0]), ",")
}

// BenchmarkNodeAddresses20k derives the addresses of a node whose internal-ip annotation holds
// 20,000 addresses, which de-duplication once made quadratic (1.7 s per sync), and whose
// external-ip annotation holds 20,000 unusable ones, each a Warning the controller reports once.
func BenchmarkNodeAddresses20k(b *testing.B) {
	node := makeNode("a", annotated(
		"k3s.io/internal-ip", addressList("10.0.0.1", 20_000),
		"k3s.io/external-ip", addressList("127.0.0.1", 20_000)))
	keys := NewKeys("")
	reported := newReportedWarnings()
	for b.Loop() {
		m := NodeMetadata(node, keys)
		if len(m.Addresses) != 20_000 || len(m.Invalid) != 20_001 {
			b.Fatalf("%d addresses, %d invalid", len(m.Addresses), len(m.Invalid))
		}
		warnings := make([]warning, 0, len(m.Invalid))
		for _, v := range m.Invalid {
			warnings = append(warnings, warning{reason: ReasonInvalidAddress, message: v.String()})
		}
		reported.update(node.Name, warnings)
	}
}

// BenchmarkParseIPList20k parses a --node-ip flag of 20,000 addresses.
func BenchmarkParseIPList20k(b *testing.B) {
	list := addressList("10.0.0.1", 20_000)
	for b.Loop() {
		if ips, err := ParseIPList(list); err != nil || len(ips) != 20_000 {
			b.Fatalf("%d IPs, %v", len(ips), err)
		}
	}
}
