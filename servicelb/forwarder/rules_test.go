package forwarder

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// bothOn is forwarding on in both families.
func bothOn() map[Family]forwarding {
	return map[Family]forwarding{IPv4: forwardingOn, IPv6: forwardingOn}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		fwd         map[Family]forwarding
		wantInstall []Family
		wantSkip    []skip
	}{{
		name:        "dual-stack destinations with forwarding on install both families",
		cfg:         newConfig(),
		fwd:         bothOn(),
		wantInstall: []Family{IPv4, IPv6},
	}, {
		name:        "IPv6 forwarding off skips IPv6 instead of crash-looping (#9949)",
		cfg:         newConfig(),
		fwd:         map[Family]forwarding{IPv4: forwardingOn, IPv6: forwardingOff},
		wantInstall: []Family{IPv4},
		wantSkip:    []skip{{IPv6, skipForwardingOff}},
	}, {
		name:        "a kernel with IPv6 disabled skips IPv6 (#10455)",
		cfg:         newConfig(),
		fwd:         map[Family]forwarding{IPv4: forwardingOn, IPv6: forwardingAbsent},
		wantInstall: []Family{IPv4},
		wantSkip:    []skip{{IPv6, skipFamilyDisabled}},
	}, {
		name:     "forwarding off everywhere installs nothing and skips both",
		cfg:      newConfig(),
		fwd:      map[Family]forwarding{},
		wantSkip: []skip{{IPv4, skipForwardingOff}, {IPv6, skipForwardingOff}},
	}, {
		name:        "an IPv4-only ClusterIP skips IPv6 for lack of a destination, whatever its sysctl",
		cfg:         newConfig(func(c *Config) { c.DestIPs = addrs("10.43.0.10") }),
		fwd:         map[Family]forwarding{IPv4: forwardingOn, IPv6: forwardingAbsent},
		wantInstall: []Family{IPv4},
		wantSkip:    []skip{{IPv6, skipNoDestination}},
	}, {
		name:        "an IPv6-only Service skips IPv4 for lack of a destination",
		cfg:         newConfig(func(c *Config) { c.DestIPs = addrs("fd00:43::10") }),
		fwd:         bothOn(),
		wantInstall: []Family{IPv6},
		wantSkip:    []skip{{IPv4, skipNoDestination}},
	}, {
		name: "ETP Local on a dual-stack node with IPv4-only source ranges skips IPv6, which nobody may reach",
		cfg: newConfig(func(c *Config) {
			c.SrcRanges = prefixes("0.0.0.0/0")
			c.DestIPs = addrs("192.168.1.5", "fd00:1::5")
		}),
		fwd:         bothOn(),
		wantInstall: []Family{IPv4},
		wantSkip:    []skip{{IPv6, skipNoSourceRange}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			install, skipped := plan(tt.cfg, tt.fwd)
			var got []Family
			for _, fr := range install {
				got = append(got, fr.family)
				assert.Equal(t, newFamilyRules(tt.cfg, fr.family), fr, "an installed family gets its whole rule set")
			}
			assert.Equal(t, tt.wantInstall, got)
			assert.Equal(t, tt.wantSkip, skipped)
		})
	}
}

func TestNewFamilyRules(t *testing.T) {
	filter := func(chain string) func(rule) rule {
		return func(r rule) rule { r.table, r.chain = tableFilter, chain; return r }
	}
	nat := func(chain string) func(rule) rule {
		return func(r rule) rule { r.table, r.chain = tableNAT, chain; return r }
	}
	each := func(in func(rule) rule, rs ...rule) []rule {
		for i := range rs {
			rs[i] = in(rs[i])
		}
		return rs
	}
	dest := func(s string, port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), port) }
	host := func(s string) netip.Prefix { return hostPrefix(netip.MustParseAddr(s)) }

	tests := []struct {
		name string
		cfg  Config
		fam  Family
		want familyRules
	}{{
		name: "one IPv4 destination: accept the range, drop the rest, DNAT and masquerade",
		cfg:  newConfig(),
		fam:  IPv4,
		want: familyRules{
			family: IPv4,
			chains: []chainRules{
				{chainRef{tableFilter, "KLIPPER-LB-FWD-TCP-80"}, each(filter("KLIPPER-LB-FWD-TCP-80"),
					rule{src: netip.MustParsePrefix("10.1.0.0/16"), target: targetAccept},
					rule{dst: host("10.2.0.2"), target: targetDrop})},
				{chainRef{tableNAT, "KLIPPER-LB-MASQ-TCP-80"}, each(nat("KLIPPER-LB-MASQ-TCP-80"),
					rule{dst: host("10.2.0.2"), target: targetMasquerade})},
				{chainRef{tableNAT, "KLIPPER-LB-DNAT-TCP-80"}, each(nat("KLIPPER-LB-DNAT-TCP-80"),
					rule{proto: TCP, target: targetDNAT, toDest: dest("10.2.0.2", 8080)})},
			},
			jumps: []rule{
				{table: tableFilter, chain: chainForward, proto: TCP, dport: 8080, target: "KLIPPER-LB-FWD-TCP-80"},
				{table: tableNAT, chain: chainPostrouting, proto: TCP, dport: 8080, target: "KLIPPER-LB-MASQ-TCP-80"},
				{table: tableNAT, chain: chainPrerouting, proto: TCP, dport: 80, target: "KLIPPER-LB-DNAT-TCP-80"},
			},
		},
	}, {
		name: "the IPv6 family takes only IPv6 ranges and destinations, /128 hosts",
		cfg:  newConfig(func(c *Config) { c.Proto = UDP; c.SrcPort = 53; c.DestPort = 53 }),
		fam:  IPv6,
		want: familyRules{
			family: IPv6,
			chains: []chainRules{
				{chainRef{tableFilter, "KLIPPER-LB-FWD-UDP-53"}, each(filter("KLIPPER-LB-FWD-UDP-53"),
					rule{src: netip.MustParsePrefix("fd00:1::/64"), target: targetAccept},
					rule{dst: host("fd00:2::2"), target: targetDrop})},
				{chainRef{tableNAT, "KLIPPER-LB-MASQ-UDP-53"}, each(nat("KLIPPER-LB-MASQ-UDP-53"),
					rule{dst: host("fd00:2::2"), target: targetMasquerade})},
				{chainRef{tableNAT, "KLIPPER-LB-DNAT-UDP-53"}, each(nat("KLIPPER-LB-DNAT-UDP-53"),
					rule{proto: UDP, target: targetDNAT, toDest: dest("fd00:2::2", 53)})},
			},
			jumps: []rule{
				{table: tableFilter, chain: chainForward, proto: UDP, dport: 53, target: "KLIPPER-LB-FWD-UDP-53"},
				{table: tableNAT, chain: chainPostrouting, proto: UDP, dport: 53, target: "KLIPPER-LB-MASQ-UDP-53"},
				{table: tableNAT, chain: chainPrerouting, proto: UDP, dport: 53, target: "KLIPPER-LB-DNAT-UDP-53"},
			},
		},
	}, {
		name: "three destinations share connections round-robin: every 3rd, every 2nd of the rest, the rest",
		cfg: newConfig(func(c *Config) {
			c.Proto, c.SrcPort, c.DestPort = SCTP, 9000, 30900
			c.SrcRanges = prefixes("10.1.0.0/16", "192.168.0.0/24")
			c.DestIPs = addrs("10.2.0.2", "10.2.0.3", "10.2.0.4")
		}),
		fam: IPv4,
		want: familyRules{
			family: IPv4,
			chains: []chainRules{
				{chainRef{tableFilter, "KLIPPER-LB-FWD-SCTP-9000"}, each(filter("KLIPPER-LB-FWD-SCTP-9000"),
					rule{src: netip.MustParsePrefix("10.1.0.0/16"), target: targetAccept},
					rule{src: netip.MustParsePrefix("192.168.0.0/24"), target: targetAccept},
					rule{dst: host("10.2.0.2"), target: targetDrop},
					rule{dst: host("10.2.0.3"), target: targetDrop},
					rule{dst: host("10.2.0.4"), target: targetDrop})},
				{chainRef{tableNAT, "KLIPPER-LB-MASQ-SCTP-9000"}, each(nat("KLIPPER-LB-MASQ-SCTP-9000"),
					rule{dst: host("10.2.0.2"), target: targetMasquerade},
					rule{dst: host("10.2.0.3"), target: targetMasquerade},
					rule{dst: host("10.2.0.4"), target: targetMasquerade})},
				{chainRef{tableNAT, "KLIPPER-LB-DNAT-SCTP-9000"}, each(nat("KLIPPER-LB-DNAT-SCTP-9000"),
					rule{proto: SCTP, nth: nth{every: 3}, target: targetDNAT, toDest: dest("10.2.0.2", 30900)},
					rule{proto: SCTP, nth: nth{every: 2}, target: targetDNAT, toDest: dest("10.2.0.3", 30900)},
					rule{proto: SCTP, target: targetDNAT, toDest: dest("10.2.0.4", 30900)})},
			},
			jumps: []rule{
				{table: tableFilter, chain: chainForward, proto: SCTP, dport: 30900, target: "KLIPPER-LB-FWD-SCTP-9000"},
				{table: tableNAT, chain: chainPostrouting, proto: SCTP, dport: 30900, target: "KLIPPER-LB-MASQ-SCTP-9000"},
				{table: tableNAT, chain: chainPrerouting, proto: SCTP, dport: 9000, target: "KLIPPER-LB-DNAT-SCTP-9000"},
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, newFamilyRules(tt.cfg, tt.fam))
		})
	}
}

func TestChainNamesFitIPTablesLimit(t *testing.T) {
	// XT_EXTENSION_MAXNAMELEN is 29 including the terminating NUL.
	names := newChainNames(newConfig(func(c *Config) { c.Proto, c.SrcPort = SCTP, 65535 }))
	for _, n := range []string{names.forward, names.dnat, names.masquerade} {
		assert.LessOrEqual(t, len(n), 28, n)
	}
}
