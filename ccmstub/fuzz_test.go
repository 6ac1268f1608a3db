package ccmstub

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/internal/nodeaddr"
)

// FuzzParseIPList checks the parsing of --node-ip and --node-external-ip values: either an
// error, or usable, unmapped, distinct addresses in written order that survive the trip
// through the agent's annotations and back into the Node's addresses unchanged.
func FuzzParseIPList(f *testing.F) {
	f.Add("10.0.0.5,fd00::5", "10.0.0.6")
	f.Add(" 10.0.0.1,,FD00:0::1 ,10.0.0.1", "::ffff:10.0.0.2,")
	f.Add("0.0.0.0", "127.0.0.1,fe80::1%eth0")
	f.Add("10.0.0.66 registry-1.docker.io", "10.0.0.66\n10.0.0.67")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		got, err := ParseIPList(v1, v2)
		joined, joinedErr := ParseIPList(v1 + "," + v2)
		// Repeating the flag is the same as one comma list.
		if (err == nil) != (joinedErr == nil) || !slices.Equal(got, joined) {
			t.Fatalf("ParseIPList(%q, %q) = %v, %v but joined = %v, %v", v1, v2, got, err, joined, joinedErr)
		}
		if err != nil {
			if got != nil || err.Error() == "" {
				t.Fatalf("ParseIPList(%q, %q) = %v with error %q", v1, v2, got, err)
			}
			return
		}
		items := strings.Count(v1, ",") + strings.Count(v2, ",") + 2
		if len(got) > items {
			t.Fatalf("%d addresses from %d items", len(got), items)
		}
		seen := map[netip.Addr]bool{}
		for _, a := range got {
			if seen[a] || a.Is4In6() || nodeaddr.Check(a) != nil {
				t.Fatalf("ParseIPList(%q, %q) returned %v: repeated, mapped or unusable %s", v1, v2, got, a)
			}
			seen[a] = true
		}
		if again, err := ParseIPList(joinIPs(got)); err != nil || !slices.Equal(again, got) {
			t.Fatalf("reparsing %q gave %v, %v; want %v", joinIPs(got), again, err, got)
		}
		if len(got) == 0 {
			return
		}
		// The agent writes them; the stub reads them back as the Node's addresses.
		keys := NewKeys("")
		cfg := NodeConfig{Name: "node-a", InternalIPs: got, ExternalIPs: got}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("a parsed list fails NodeConfig.Validate: %v", err)
		}
		node := makeNode("node-a", labelled(keys.Hostname, "node-a"))
		node.Annotations = agentAnnotations(cfg, keys)
		for k, v := range agentLegacyLabels(node, cfg, keys) {
			if len(validation.IsValidLabelValue(v)) > 0 {
				t.Fatalf("legacy label %s=%q is not a label value", k, v)
			}
		}
		addrs, invalid := nodeAddresses(node, keys)
		if len(invalid) > 0 {
			t.Fatalf("the stub refused what the agent wrote: %v", invalid)
		}
		var internal []string
		for _, a := range addrs {
			if a.Type == corev1.NodeInternalIP {
				internal = append(internal, a.Address)
			}
		}
		if want := strings.Split(joinIPs(got), ","); !slices.Equal(internal, want) {
			t.Fatalf("InternalIPs %v after the round trip, want %v", internal, want)
		}
	})
}

// FuzzNodeAddresses feeds any annotation and legacy label values to the stub: the addresses it
// writes are canonical usable IPs and DNS names with nothing a hosts file or a comma list
// could split, in K3s's type order without repeats; every item left out is reported.
func FuzzNodeAddresses(f *testing.F) {
	f.Add("10.0.0.1,fd00::1", "203.0.113.7", "a.internal", "a.example.com", "host-a", "", "")
	f.Add("10.0.0.1,not-an-ip,10.0.0.300", "fe80::1%eth0", "ok.internal,bad_name", "", "Host_A", "", "")
	f.Add("", "", "", "", "", "10.0.0.9", "legacy-host")
	f.Add("10.0.0.66 registry-1.docker.io", "0.0.0.0", "x\ny", "", "a,b", "::1", "")
	f.Fuzz(func(t *testing.T, internal, external, internalDNS, externalDNS, hostname, legacyIP, legacyHost string) {
		keys := NewKeys("")
		node := makeNode("node-a",
			annotated(keys.InternalIP, internal, keys.ExternalIP, external, keys.InternalDNS, internalDNS,
				keys.ExternalDNS, externalDNS, keys.Hostname, hostname),
			labelled(keys.InternalIP, legacyIP, keys.Hostname, legacyHost))
		addrs, invalid := nodeAddresses(node, keys)

		order := []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP,
			corev1.NodeInternalDNS, corev1.NodeExternalDNS, corev1.NodeHostName}
		seen := map[corev1.NodeAddress]bool{}
		last := 0
		for _, a := range addrs {
			rank := slices.Index(order, a.Type)
			if rank < last {
				t.Fatalf("addresses out of K3s's order: %v", addrs)
			}
			last = rank
			if seen[a] {
				t.Fatalf("repeated address %v in %v", a, addrs)
			}
			seen[a] = true
			if a.Address == "" || strings.ContainsAny(a.Address, " \t\r\n,") {
				t.Fatalf("address %q could be split by a reader", a.Address)
			}
			switch a.Type {
			case corev1.NodeInternalIP, corev1.NodeExternalIP:
				ip, err := netip.ParseAddr(a.Address)
				if err != nil || ip.String() != a.Address || ip.Is4In6() || nodeaddr.Check(ip) != nil {
					t.Fatalf("%s %q is not a canonical usable IP", a.Type, a.Address)
				}
			default:
				if errs := validation.IsDNS1123Subdomain(strings.ToLower(a.Address)); len(errs) > 0 {
					t.Fatalf("%s %q is not a DNS name: %v", a.Type, a.Address, errs)
				}
			}
		}
		for _, v := range invalid {
			if v.Err == nil || !slices.Contains(keys.annotations(), v.Key) || !strings.Contains(v.String(), v.Key) {
				t.Fatalf("unclear InvalidValue %+v", v)
			}
		}
		// The internal-ip annotation means what the --node-ip flag parser says it means.
		if strings.TrimSpace(internal) != "" {
			want, err := ParseIPList(internal)
			var got []netip.Addr
			for _, a := range addrs {
				if a.Type == corev1.NodeInternalIP {
					got = append(got, netip.MustParseAddr(a.Address))
				}
			}
			bad := slices.ContainsFunc(invalid, func(v InvalidValue) bool { return v.Key == keys.InternalIP })
			if (err != nil) != bad || (err == nil && !slices.Equal(got, want)) {
				t.Fatalf("internal-ip %q: stub gave %v (invalid items: %v), flag parser %v, %v", internal, got, bad, want, err)
			}
			if err != nil && errors.Is(err, nodeaddr.ErrUnusable) != slices.ContainsFunc(invalid, func(v InvalidValue) bool {
				return v.Key == keys.InternalIP && errors.Is(v.Err, nodeaddr.ErrUnusable)
			}) {
				t.Fatalf("internal-ip %q: flag parser and stub disagree on why it is refused", internal)
			}
		}
	})
}
