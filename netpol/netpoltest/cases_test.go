package netpoltest

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// ipBlocks returns, per case name, the CIDRs and excepts of every ipBlock the case's policies
// name, as "cidr except e1 e2".
func ipBlocks(cases []Case) map[string][]string {
	out := map[string][]string{}
	for _, c := range cases {
		for _, np := range c.Policies {
			for _, r := range np.Spec.Egress {
				for _, p := range r.To {
					if p.IPBlock != nil {
						out[c.Name] = append(out[c.Name], strings.TrimSpace(p.IPBlock.CIDR+" "+strings.Join(p.IPBlock.Except, " ")))
					}
				}
			}
		}
	}
	return out
}

func TestUpstreamE2EIPBlocksFollowTheAddresses(t *testing.T) {
	cluster := Addresses{
		Pods: map[string][]netip.Addr{
			"x/b": {netip.MustParseAddr("10.42.1.7"), netip.MustParseAddr("fd00:42:0:1::7")},
			"y/b": {netip.MustParseAddr("10.42.2.9"), netip.MustParseAddr("fd00:42:0:2::9")},
		},
		Ranges: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("fd00:42::/56")},
	}
	v4Only := Addresses{Pods: map[string][]netip.Addr{"x/b": {netip.MustParseAddr("10.42.1.7")}, "y/b": {netip.MustParseAddr("10.42.2.9")}},
		Ranges: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16")}}
	tests := []struct {
		name  string
		addrs Addresses
		want  map[string][]string
	}{
		{
			name:  "the model's addresses give upstream's blocks",
			addrs: ModelAddresses(),
			want: map[string][]string{
				"#34 an egress ipBlock of one pod's IPv4 address allows only that pod":      {"10.0.2.2/32"},
				"#34 an egress ipBlock of one pod's IPv6 address allows only that pod":      {"fd00::2:2/128"},
				"#35 an IPv4 ipBlock except removes one pod from the allowed block":         {"10.0.0.0/16 10.0.1.2/32"},
				"#35 an IPv6 ipBlock except removes one pod from the allowed block":         {"fd00::/64 fd00::1:2/128"},
				"#36 updating the IPv4 policy to the excepted address alone allows only it": {"10.0.1.2/32"},
				"#36 updating the IPv6 policy to the excepted address alone allows only it": {"fd00::1:2/128"},
			},
		},
		{
			name:  "a cluster's addresses and pod ranges are used as they are",
			addrs: cluster,
			want: map[string][]string{
				"#34 an egress ipBlock of one pod's IPv4 address allows only that pod":      {"10.42.2.9/32"},
				"#34 an egress ipBlock of one pod's IPv6 address allows only that pod":      {"fd00:42:0:2::9/128"},
				"#35 an IPv4 ipBlock except removes one pod from the allowed block":         {"10.42.0.0/16 10.42.1.7/32"},
				"#35 an IPv6 ipBlock except removes one pod from the allowed block":         {"fd00:42::/56 fd00:42:0:1::7/128"},
				"#36 updating the IPv4 policy to the excepted address alone allows only it": {"10.42.1.7/32"},
				"#36 updating the IPv6 policy to the excepted address alone allows only it": {"fd00:42:0:1::7/128"},
			},
		},
		{
			name:  "a family without addresses has no ipBlock case",
			addrs: v4Only,
			want: map[string][]string{
				"#34 an egress ipBlock of one pod's IPv4 address allows only that pod":      {"10.42.2.9/32"},
				"#35 an IPv4 ipBlock except removes one pod from the allowed block":         {"10.42.0.0/16 10.42.1.7/32"},
				"#36 updating the IPv4 policy to the excepted address alone allows only it": {"10.42.1.7/32"},
			},
		},
		{
			name:  "no addresses, no ipBlock case",
			addrs: Addresses{},
			want:  map[string][]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ipBlocks(UpstreamE2E(tt.addrs)))
		})
	}
}

// testNumber is the upstream test a case is a step of: the first word of its name.
func testNumber(c Case) string { return strings.Fields(c.Name)[0] }

func TestCasesContinueOnlyTheirOwnTest(t *testing.T) {
	for _, list := range []struct {
		name  string
		cases []Case
	}{{"upstream", UpstreamE2E(ModelAddresses())}, {"endPort", EndPortCases()}} {
		t.Run(list.name, func(t *testing.T) {
			require.NotEmpty(t, list.cases)
			assert.False(t, list.cases[0].Continues, "the first case starts from a clean cluster")
			for i, c := range list.cases[1:] {
				prev := list.cases[i]
				same := testNumber(prev) == testNumber(c) || testNumber(prev) == "#35" && testNumber(c) == "#36"
				assert.Equal(t, same, c.Continues, "%q after %q", c.Name, prev.Name)
			}
		})
	}
}

func TestExpectation(t *testing.T) {
	tests := []struct {
		name string
		exp  *Expectation
		// denied lists the cells that must be denied, as "from>to"; every other is allowed.
		denied []string
	}{
		{name: "everything allowed", exp: ExpectAll()},
		{
			name:   "ingress denies every cell into the pattern, loopback excepted",
			exp:    ExpectAll().Ingress("x/a", false),
			denied: []string{"x/b>x/a", "x/c>x/a", "y/a>x/a", "y/b>x/a", "y/c>x/a", "z/a>x/a", "z/b>x/a", "z/c>x/a"},
		},
		{
			name:   "egress denies every cell out of the pattern, and a later set reopens one",
			exp:    ExpectAll().Egress("z/c", false).Set("z/c", "[xy]/*", true),
			denied: []string{"z/c>z/a", "z/c>z/b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := tt.exp.Names()
			require.Equal(t, PodKeys(), names)
			var denied []string
			for i, row := range tt.exp.Allowed() {
				for j, ok := range row {
					if !ok {
						denied = append(denied, names[i]+">"+names[j])
					}
				}
			}
			assert.Equal(t, tt.denied, denied)
		})
	}
}

func TestPodDeclaresTheModelsNamedPorts(t *testing.T) {
	pod := Pod("y", "c", WithLabels("role", "db"))
	assert.Equal(t, map[string]string{"pod": "c", "role": "db"}, pod.Labels)
	assert.Equal(t, []corev1.PodIP{{IP: "10.0.2.3"}, {IP: "fd00::2:3"}}, pod.Status.PodIPs)
	var ports []string
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, c.Name+" "+p.Name)
		}
	}
	assert.Equal(t, []string{"cont-80-tcp serve-80-tcp", "cont-80-udp serve-80-udp", "cont-80-sctp serve-80-sctp",
		"cont-81-tcp serve-81-tcp", "cont-81-udp serve-81-udp", "cont-81-sctp serve-81-sctp"}, ports)
}
