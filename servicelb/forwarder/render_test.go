package forwarder

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRuleArgs(t *testing.T) {
	tests := []struct {
		name string
		rule rule
		want []string
	}{{
		name: "a source range accept",
		rule: rule{src: netip.MustParsePrefix("10.1.0.0/16"), target: targetAccept},
		want: []string{"-s", "10.1.0.0/16", "-j", "ACCEPT"},
	}, {
		name: "an unmasked range is masked, as iptables -S lists it",
		rule: rule{src: netip.MustParsePrefix("10.1.2.3/16"), target: targetAccept},
		want: []string{"-s", "10.1.0.0/16", "-j", "ACCEPT"},
	}, {
		name: "a /0 range is left out, as iptables -S leaves it out",
		rule: rule{src: netip.MustParsePrefix("0.0.0.0/0"), target: targetAccept},
		want: []string{"-j", "ACCEPT"},
	}, {
		name: "an IPv6 /0 range is left out too",
		rule: rule{src: netip.MustParsePrefix("::/0"), target: targetAccept},
		want: []string{"-j", "ACCEPT"},
	}, {
		name: "a destination drop is a /32",
		rule: rule{dst: hostPrefix(netip.MustParseAddr("10.2.0.2")), target: targetDrop},
		want: []string{"-d", "10.2.0.2/32", "-j", "DROP"},
	}, {
		name: "an IPv6 destination masquerade is a /128",
		rule: rule{dst: hostPrefix(netip.MustParseAddr("fd00:2::2")), target: targetMasquerade},
		want: []string{"-d", "fd00:2::2/128", "-j", "MASQUERADE"},
	}, {
		name: "a jump matches the protocol with its own match module and the port",
		rule: rule{proto: SCTP, dport: 9000, target: "KLIPPER-LB-DNAT-SCTP-9000"},
		want: []string{"-p", "sctp", "-m", "sctp", "--dport", "9000", "-j", "KLIPPER-LB-DNAT-SCTP-9000"},
	}, {
		name: "the last DNAT names the protocol and no statistic",
		rule: rule{proto: TCP, target: targetDNAT, toDest: netip.MustParseAddrPort("10.2.0.2:8080")},
		want: []string{"-p", "tcp", "-j", "DNAT", "--to-destination", "10.2.0.2:8080"},
	}, {
		name: "a round-robin DNAT to IPv6 brackets the address",
		rule: rule{proto: UDP, nth: nth{every: 2}, target: targetDNAT, toDest: netip.MustParseAddrPort("[fd00:2::2]:53")},
		want: []string{"-p", "udp", "-m", "statistic", "--mode", "nth", "--every", "2", "--packet", "0",
			"-j", "DNAT", "--to-destination", "[fd00:2::2]:53"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.rule.args())
		})
	}
}

func TestChainListing(t *testing.T) {
	// What iptables-nft 1.8.9 lists for these rules, copied from `iptables -S`.
	fr := newFamilyRules(newConfig(func(c *Config) { c.DestIPs = addrs("10.2.0.2", "10.2.0.3") }), IPv4)
	var got []string
	for _, c := range fr.chains {
		got = append(got, c.listing()...)
	}
	assert.Equal(t, []string{
		"-A KLIPPER-LB-FWD-TCP-80 -s 10.1.0.0/16 -j ACCEPT",
		"-A KLIPPER-LB-FWD-TCP-80 -d 10.2.0.2/32 -j DROP",
		"-A KLIPPER-LB-FWD-TCP-80 -d 10.2.0.3/32 -j DROP",
		"-A KLIPPER-LB-MASQ-TCP-80 -d 10.2.0.2/32 -j MASQUERADE",
		"-A KLIPPER-LB-MASQ-TCP-80 -d 10.2.0.3/32 -j MASQUERADE",
		"-A KLIPPER-LB-DNAT-TCP-80 -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.2.0.2:8080",
		"-A KLIPPER-LB-DNAT-TCP-80 -p tcp -j DNAT --to-destination 10.2.0.3:8080",
	}, got)
}
