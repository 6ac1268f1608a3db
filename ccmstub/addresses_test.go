package ccmstub

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
)

func TestNodeMetadataAddresses(t *testing.T) {
	tests := []struct {
		name        string
		program     string
		node        *corev1.Node
		want        []corev1.NodeAddress
		wantInvalid []string // InvalidValue.String() of each rejected item
	}{
		{
			name: "a node without annotations or labels has no addresses",
			node: makeNode("a"),
		},
		{
			name: "all five annotations give addresses in K3s's order whatever the map order",
			node: makeNode("a", annotated(
				"k3s.io/hostname", "host-a",
				"k3s.io/external-dns", "a.example.com",
				"k3s.io/internal-dns", "a.internal",
				"k3s.io/external-ip", "203.0.113.7",
				"k3s.io/internal-ip", "10.0.0.1",
			)),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), externalIP("203.0.113.7"),
				internalDNS("a.internal"), externalDNS("a.example.com"), hostnameAddr("host-a")},
		},
		{
			name: "dual-stack lists keep their written order, IPv6 first included",
			node: makeNode("a", annotated(
				"k3s.io/internal-ip", "fd00::1,10.0.0.1",
				"k3s.io/external-ip", "203.0.113.7, 2001:db8::7",
			)),
			want: []corev1.NodeAddress{internalIP("fd00::1"), internalIP("10.0.0.1"),
				externalIP("203.0.113.7"), externalIP("2001:db8::7")},
		},
		{
			name: "IPs are written canonically, blanks skipped and repeats dropped",
			node: makeNode("a", annotated("k3s.io/internal-ip", " 10.0.0.1,,FD00:0::1 ,10.0.0.1,::ffff:10.0.0.2,")),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), internalIP("fd00::1"), internalIP("10.0.0.2")},
		},
		{
			name: "legacy labels are the fallback for internal IP, external IP and hostname",
			node: makeNode("a", labelled(
				"k3s.io/internal-ip", "10.0.0.1",
				"k3s.io/external-ip", "203.0.113.7",
				"k3s.io/hostname", "host-a",
			)),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), externalIP("203.0.113.7"), hostnameAddr("host-a")},
		},
		{
			name: "an annotation wins over its legacy label",
			node: makeNode("a",
				annotated("k3s.io/internal-ip", "10.0.0.1,fd00::1"),
				labelled("k3s.io/internal-ip", "10.9.9.9")),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), internalIP("fd00::1")},
		},
		{
			name: "DNS names have no legacy label",
			node: makeNode("a", labelled("k3s.io/internal-dns", "a.internal")),
		},
		{
			name: "without a hostname annotation or label the kubelet's Hostname address is kept",
			node: makeNode("a",
				annotated("k3s.io/internal-ip", "10.0.0.1"),
				withAddresses(internalIP("192.0.2.1"), hostnameAddr("kubelet-name"))),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), hostnameAddr("kubelet-name")},
		},
		{
			name: "garbage items are reported by key and value, the valid ones kept",
			node: makeNode("a", annotated(
				"k3s.io/internal-ip", "10.0.0.1,not-an-ip,10.0.0.300",
				"k3s.io/external-ip", "fe80::1%eth0",
				"k3s.io/internal-dns", "ok.internal,bad_name",
				"k3s.io/hostname", "host-a,host-b",
			)),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), internalDNS("ok.internal")},
			wantInvalid: []string{
				`annotation k3s.io/internal-ip: "not-an-ip" is not an IP address`,
				`annotation k3s.io/internal-ip: "10.0.0.300" is not an IP address`,
				`annotation k3s.io/external-ip: "fe80::1%eth0" is an address with an IPv6 zone, which is only meaningful on one host`,
				`annotation k3s.io/internal-dns: "bad_name" is not a DNS name`,
				`annotation k3s.io/hostname: "host-a,host-b" is not a DNS name`,
			},
		},
		{
			name: "addresses no other host reaches the node at are reported, not published",
			node: makeNode("a", annotated(
				"k3s.io/internal-ip", "127.0.0.1,10.0.0.1,::1,169.254.0.1",
				"k3s.io/external-ip", "0.0.0.0,224.0.0.1,ff02::1,::,255.255.255.255,203.0.113.7",
			)),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), externalIP("203.0.113.7")},
			wantInvalid: []string{
				`annotation k3s.io/internal-ip: "127.0.0.1" is a loopback address: not usable as a node address`,
				`annotation k3s.io/internal-ip: "::1" is a loopback address`,
				`annotation k3s.io/internal-ip: "169.254.0.1" is a link-local address`,
				`annotation k3s.io/external-ip: "0.0.0.0" is the unspecified address`,
				`annotation k3s.io/external-ip: "224.0.0.1" is a multicast address`,
				`annotation k3s.io/external-ip: "ff02::1" is a multicast address`,
				`annotation k3s.io/external-ip: "::" is the unspecified address`,
				`annotation k3s.io/external-ip: "255.255.255.255" is the broadcast address`,
			},
		},
		{
			name:        "an unusable legacy label is reported as a label",
			node:        makeNode("a", labelled("k3s.io/external-ip", "0.0.0.0")),
			wantInvalid: []string{`label k3s.io/external-ip: "0.0.0.0" is the unspecified address`},
		},
		{
			name:        "a garbage legacy label is reported as a label",
			node:        makeNode("a", labelled("k3s.io/internal-ip", "ten")),
			wantInvalid: []string{`label k3s.io/internal-ip: "ten" is not an IP address`},
		},
		{
			name: "a hostname in capitals, as K3s writes os.Hostname, is kept as written",
			node: makeNode("a", annotated("k3s.io/internal-ip", "10.0.0.1", "k3s.io/hostname", "Host-A")),
			want: []corev1.NodeAddress{internalIP("10.0.0.1"), hostnameAddr("Host-A")},
		},
		{
			name:    "rke2 reads rke2.io keys and ignores k3s.io ones",
			program: "rke2",
			node: makeNode("a", annotated(
				"k3s.io/internal-ip", "10.0.0.1",
				"rke2.io/internal-ip", "10.0.0.2",
			)),
			want: []corev1.NodeAddress{internalIP("10.0.0.2")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.node.DeepCopy()
			m := NodeMetadata(tt.node, NewKeys(tt.program))
			assert.Equal(t, tt.want, m.Addresses)
			var invalid []string
			for _, v := range m.Invalid {
				invalid = append(invalid, v.String())
			}
			if len(tt.wantInvalid) == 0 {
				assert.Empty(t, invalid)
			}
			for i, want := range tt.wantInvalid {
				if assert.Greater(t, len(invalid), i, "missing invalid value %q", want) {
					assert.Contains(t, invalid[i], want)
				}
			}
			assert.Len(t, invalid, len(tt.wantInvalid))
			assert.Equal(t, before, tt.node, "NodeMetadata must not change its input")
		})
	}
}

func TestNodeMetadataIdentity(t *testing.T) {
	tests := []struct {
		name    string
		program string
		node    *corev1.Node
		want    Metadata
	}{
		{
			name: "defaults are k3s://<name> and instance type k3s, no zone or region",
			node: makeNode("node-a"),
			want: Metadata{ProviderID: "k3s://node-a", InstanceType: "k3s"},
		},
		{
			name:    "rke2 builds its own scheme and instance type",
			program: "rke2",
			node:    makeNode("node-a"),
			want:    Metadata{ProviderID: "rke2://node-a", InstanceType: "rke2"},
		},
		{
			name: "a providerID set by kubelet --provider-id is returned unchanged",
			node: makeNode("node-a", withProviderID("aws:///eu-west-1a/i-0abc")),
			want: Metadata{ProviderID: "aws:///eu-west-1a/i-0abc", InstanceType: "k3s"},
		},
		{
			name: "instance type, zone and region are echoed from the stable labels",
			node: makeNode("node-a", labelled(
				corev1.LabelInstanceTypeStable, "m5.large",
				corev1.LabelTopologyZone, "zone-1",
				corev1.LabelTopologyRegion, "region-1",
				corev1.LabelFailureDomainBetaZone, "old-zone",
			)),
			want: Metadata{ProviderID: "k3s://node-a", InstanceType: "m5.large", Zone: "zone-1", Region: "region-1"},
		},
		{
			name: "the beta labels are used when the stable ones are missing",
			node: makeNode("node-a", labelled(
				corev1.LabelInstanceType, "m4.large",
				corev1.LabelFailureDomainBetaZone, "zone-b",
				corev1.LabelFailureDomainBetaRegion, "region-b",
			)),
			want: Metadata{ProviderID: "k3s://node-a", InstanceType: "m4.large", Zone: "zone-b", Region: "region-b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NodeMetadata(tt.node, NewKeys(tt.program))
			assert.Equal(t, tt.want, got)
		})
	}
}
