package reference

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// grid joins truth-table lines and squeezes their spacing, so a table can be written
// aligned by hand and compared with Matrix.String.
func grid(lines ...string) string {
	var b strings.Builder
	for _, line := range lines {
		b.WriteString(strings.Join(strings.Fields(line), " ") + "\n")
	}
	return b.String()
}

// TestReachabilityTruthTables asserts full reachability matrices of the e2e model (rows are
// sources, columns destinations, "." allowed, "X" denied) for policy sets that combine
// several behaviours at once.
func TestReachabilityTruthTables(t *testing.T) {
	const header = "x/a x/b x/c y/a y/b y/c z/a z/b z/c"
	var (
		podA = labelsSel("pod", "a")
		all  = labelsSel()
		// dnsOnly isolates every pod of ns in both directions and allows only UDP 53 to z/a.
		dnsOnly = func(ns string) *networkingv1.NetworkPolicy {
			return makePolicy(ns, "dns-only", policyTypes(typeIngress, typeEgress),
				egressRules(to(peers(podNSPeer(podA, labelsSel("ns", "z"))), protoPort(corev1.ProtocolUDP, 53))))
		}
		dnsServer = makePolicy("z", "dns-server", targets(podA), ingressRules(from(peers(nsPeer(all)), protoPort(corev1.ProtocolUDP, 53))))
		mixed     = []*networkingv1.NetworkPolicy{
			makePolicy("x", "default-deny-ingress"),
			makePolicy("y", "b-from-z", targets(labelsSel("pod", "b")), ingressRules(from(peers(nsPeer(labelsSel("ns", "z")))))),
			makePolicy("z", "c-to-x", targets(labelsSel("pod", "c")), policyTypes(typeEgress), egressRules(to(peers(nsPeer(labelsSel("ns", "x")))))),
		}
		v6Except = makePolicy("x", "a-to-v6-except-y", targets(podA), policyTypes(typeEgress),
			egressRules(to(peers(cidrPeer("fd00::/16", "fd00::2:0/112")))))
	)
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		probe    Probe
		want     string
	}{
		{
			name:  "without policies every pod reaches every pod",
			probe: Probe{Port: 80},
			want: grid("TCP/80 "+header,
				"x/a   .   .   .   .   .   .   .   .   .",
				"x/b   .   .   .   .   .   .   .   .   .",
				"x/c   .   .   .   .   .   .   .   .   .",
				"y/a   .   .   .   .   .   .   .   .   .",
				"y/b   .   .   .   .   .   .   .   .   .",
				"y/c   .   .   .   .   .   .   .   .   .",
				"z/a   .   .   .   .   .   .   .   .   .",
				"z/b   .   .   .   .   .   .   .   .   .",
				"z/c   .   .   .   .   .   .   .   .   ."),
		},
		{
			name:     "a namespace deny, a namespace allow and an egress restriction combine",
			policies: mixed,
			probe:    Probe{Port: 80},
			want: grid("TCP/80 "+header,
				"x/a   .   X   X   .   X   .   .   .   .",
				"x/b   X   .   X   .   X   .   .   .   .",
				"x/c   X   X   .   .   X   .   .   .   .",
				"y/a   X   X   X   .   X   .   .   .   .",
				"y/b   X   X   X   .   .   .   .   .   .",
				"y/c   X   X   X   .   X   .   .   .   .",
				"z/a   X   X   X   .   .   .   .   .   .",
				"z/b   X   X   X   .   .   .   .   .   .",
				"z/c   X   X   X   X   X   X   X   X   ."),
		},
		{
			name:     "default-deny everywhere with DNS allowed: only UDP 53 to z/a gets through",
			policies: []*networkingv1.NetworkPolicy{dnsOnly("x"), dnsOnly("y"), dnsOnly("z"), dnsServer},
			probe:    Probe{Protocol: corev1.ProtocolUDP, Port: 53},
			want: grid("UDP/53 "+header,
				"x/a   .   X   X   X   X   X   .   X   X",
				"x/b   X   .   X   X   X   X   .   X   X",
				"x/c   X   X   .   X   X   X   .   X   X",
				"y/a   X   X   X   .   X   X   .   X   X",
				"y/b   X   X   X   X   .   X   .   X   X",
				"y/c   X   X   X   X   X   .   .   X   X",
				"z/a   X   X   X   X   X   X   .   X   X",
				"z/b   X   X   X   X   X   X   .   .   X",
				"z/c   X   X   X   X   X   X   .   X   ."),
		},
		{
			name:     "default-deny everywhere with DNS allowed: TCP 53 gets nowhere",
			policies: []*networkingv1.NetworkPolicy{dnsOnly("x"), dnsOnly("y"), dnsOnly("z"), dnsServer},
			probe:    Probe{Protocol: corev1.ProtocolTCP, Port: 53},
			want: grid("TCP/53 "+header,
				"x/a   .   X   X   X   X   X   X   X   X",
				"x/b   X   .   X   X   X   X   X   X   X",
				"x/c   X   X   .   X   X   X   X   X   X",
				"y/a   X   X   X   .   X   X   X   X   X",
				"y/b   X   X   X   X   .   X   X   X   X",
				"y/c   X   X   X   X   X   .   X   X   X",
				"z/a   X   X   X   X   X   X   .   X   X",
				"z/b   X   X   X   X   X   X   X   .   X",
				"z/c   X   X   X   X   X   X   X   X   ."),
		},
		{
			name:     "an IPv6 ipBlock with an except opens IPv6 egress except to y",
			policies: []*networkingv1.NetworkPolicy{v6Except},
			probe:    Probe{Port: 80, Family: corev1.IPv6Protocol},
			want: grid("TCP/80/IPv6 "+header,
				"x/a   .   .   .   X   X   X   .   .   .",
				"x/b   .   .   .   .   .   .   .   .   .",
				"x/c   .   .   .   .   .   .   .   .   .",
				"y/a   .   .   .   .   .   .   .   .   .",
				"y/b   .   .   .   .   .   .   .   .   .",
				"y/c   .   .   .   .   .   .   .   .   .",
				"z/a   .   .   .   .   .   .   .   .   .",
				"z/b   .   .   .   .   .   .   .   .   .",
				"z/c   .   .   .   .   .   .   .   .   ."),
		},
		{
			name:     "the same IPv6-only ipBlock leaves IPv4 egress closed",
			policies: []*networkingv1.NetworkPolicy{v6Except},
			probe:    Probe{Port: 80, Family: corev1.IPv4Protocol},
			want: grid("TCP/80/IPv4 "+header,
				"x/a   .   X   X   X   X   X   X   X   X",
				"x/b   .   .   .   .   .   .   .   .   .",
				"x/c   .   .   .   .   .   .   .   .   .",
				"y/a   .   .   .   .   .   .   .   .   .",
				"y/b   .   .   .   .   .   .   .   .   .",
				"y/c   .   .   .   .   .   .   .   .   .",
				"z/a   .   .   .   .   .   .   .   .   .",
				"z/b   .   .   .   .   .   .   .   .   .",
				"z/c   .   .   .   .   .   .   .   .   ."),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(nil, nil)
			got, err := Reachability(m.cluster(tt.policies...), m.endpoints(), tt.probe)
			require.NoError(t, err)
			assert.Equal(t, tt.want, grid(strings.Split(strings.TrimSuffix(got.String(), "\n"), "\n")...))
		})
	}
}

// TestMatrixDiff checks the report a dataplane test prints when what it observed differs from
// the evaluator's matrix.
func TestMatrixDiff(t *testing.T) {
	m := newModel(nil, nil)
	eps := []Endpoint{podEP(m.pod("x/a")), podEP(m.pod("y/a")), ipEP("192.0.2.1")}
	probe := Probe{Port: 80}
	want, err := Reachability(m.cluster(makePolicy("x", "deny-ingress")), eps, probe)
	require.NoError(t, err)

	observed := func(cells ...[2]int) Matrix {
		got := NewMatrix(probe, eps)
		for _, row := range got.Allowed {
			for j := range row {
				row[j] = true
			}
		}
		for _, c := range cells {
			got.Allowed[c[0]][c[1]] = false
		}
		return got
	}
	tests := []struct {
		name string
		got  Matrix
		want []string
	}{
		{
			name: "an observation equal to the evaluation has no diff",
			got:  observed([2]int{1, 0}, [2]int{2, 0}),
		},
		{
			name: "a leak and a wrong denial are each reported with the evaluator's verdict",
			got:  observed([2]int{2, 0}, [2]int{1, 2}),
			want: []string{
				"y/a -> x/a TCP/80: want denied, got allowed: denied (egress: NotIsolated; ingress: NoRuleAllows, selected by x/deny-ingress)",
				"y/a -> 192.0.2.1 TCP/80: want allowed, got denied: allowed (egress: NotIsolated; ingress: NotAPod)",
			},
		},
		{
			name: "matrices over other endpoints disagree as a whole",
			got:  NewMatrix(probe, eps[:2]),
			want: []string{"endpoints differ: want [x/a y/a 192.0.2.1], got [x/a y/a]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, want.Diff(tt.got))
		})
	}
}

// TestProbeString checks the matrix header names protocol, port and family.
func TestProbeString(t *testing.T) {
	tests := []struct {
		name  string
		probe Probe
		want  string
	}{
		{name: "an empty protocol renders as TCP", probe: Probe{Port: 80}, want: "TCP/80"},
		{name: "a family is appended", probe: Probe{Protocol: corev1.ProtocolSCTP, Port: 81, Family: corev1.IPv6Protocol}, want: "SCTP/81/IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.probe.String())
		})
	}
}

// TestEndpointString checks the names matrices and diffs use.
func TestEndpointString(t *testing.T) {
	tests := []struct {
		name     string
		endpoint Endpoint
		want     string
	}{
		{name: "a pod is named namespace/name", endpoint: podEP(makePod("x", "a")), want: "x/a"},
		{name: "an external address is named by itself", endpoint: ipEP("2001:db8::1"), want: "2001:db8::1"},
		{name: "node traffic names its node", endpoint: nodeEP("node-1", "192.168.0.1"), want: "192.168.0.1@node-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.endpoint.String())
		})
	}
}
