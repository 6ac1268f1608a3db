package forwarder

import (
	"net/netip"
	"strconv"
)

// ChainPrefix starts the name of every chain the forwarder creates, so
// `iptables-save | grep KLIPPER-LB` shows all of them and nothing else.
const ChainPrefix = "KLIPPER-LB-"

// Tables and built-in chains the forwarder hooks into.
const (
	tableFilter = "filter"
	tableNAT    = "nat"

	chainForward     = "FORWARD"
	chainPrerouting  = "PREROUTING"
	chainPostrouting = "POSTROUTING"
)

// Targets of the forwarder's rules.
const (
	targetAccept     = "ACCEPT"
	targetDrop       = "DROP"
	targetDNAT       = "DNAT"
	targetMasquerade = "MASQUERADE"
)

// rule is one iptables rule as data: the chain it lives in, what it matches and
// where it jumps. Zero fields match anything.
type rule struct {
	table string
	chain string

	proto Protocol     // -p and -m; "" for any protocol
	src   netip.Prefix // -s; invalid for any source
	dst   netip.Prefix // -d; invalid for any destination
	dport uint16       // --dport, with proto; 0 for any port
	nth   nth          // -m statistic --mode nth; zero for every packet

	target string         // -j
	toDest netip.AddrPort // --to-destination, for DNAT
}

// nth matches one packet in every, counting from 0, the way -m statistic --mode nth does.
type nth struct {
	every  int
	packet int
}

// chainRef names a chain of the forwarder's own.
type chainRef struct {
	table string
	name  string
}

// familyRules is everything one forwarder installs in one family.
type familyRules struct {
	family Family
	// chains are the forwarder's own chains with their rules, in the order they are
	// filled. They are created, and replaced whole when their content differs.
	chains []chainRules
	// jumps go at the top of built-in chains and send the forwarder's traffic to its
	// own chains. They are installed in this order and removed in the reverse order.
	jumps []rule
}

// chainRules is one of the forwarder's chains and its rules in order.
type chainRules struct {
	chain chainRef
	rules []rule
}

// chainNames are one forwarder's chains. A pod runs one container per Service
// port, all in one netns, and a Service's ports differ in (protocol, port), so the
// names never collide between containers. Each hook needs a chain of its
// own: DNAT is only valid in PREROUTING, MASQUERADE only in POSTROUTING.
type chainNames struct {
	forward    string // filter, from FORWARD: who may be forwarded
	dnat       string // nat, from PREROUTING: where the port goes
	masquerade string // nat, from POSTROUTING: source becomes the pod's address
}

// newChainNames builds the chain names for cfg, such as KLIPPER-LB-DNAT-TCP-443. The
// longest, KLIPPER-LB-DNAT-SCTP-65535, is 26 bytes, under iptables' limit of 28.
func newChainNames(cfg Config) chainNames {
	suffix := string(cfg.Proto) + "-" + strconv.Itoa(int(cfg.SrcPort))
	return chainNames{
		forward:    ChainPrefix + "FWD-" + suffix,
		dnat:       ChainPrefix + "DNAT-" + suffix,
		masquerade: ChainPrefix + "MASQ-" + suffix,
	}
}

// skipReason says why a family gets no rules.
type skipReason int

const (
	// skipNoDestination: DEST_IPS has no address of the family; nothing to forward to.
	skipNoDestination skipReason = iota + 1
	// skipForwardingOff: the family's forwarding sysctl is 0 in the pod's netns, so
	// DNATed packets would be dropped anyway. The script skips it silently since
	// 2024-07; before, it exited and the pod crash-looped (K3s #9949, #10455).
	skipForwardingOff
	// skipFamilyDisabled: the forwarding sysctl does not exist, because the kernel
	// has the family disabled (ipv6.disable=1, K3s #10455).
	skipFamilyDisabled
	// skipNoSourceRange: SRC_RANGES has no range of the family, so it would accept
	// nobody. Without rules, the port answers from the pod itself: closed.
	skipNoSourceRange
)

// String says why, for the log line.
func (r skipReason) String() string {
	switch r {
	case skipNoDestination:
		return "DEST_IPS has no address of this family"
	case skipForwardingOff:
		return "forwarding is off in the pod's network namespace"
	case skipFamilyDisabled:
		return "the kernel has this family disabled (no forwarding sysctl)"
	case skipNoSourceRange:
		return "SRC_RANGES has no range of this family, so no client may connect"
	}
	return "unknown reason " + strconv.Itoa(int(r))
}

// skip is a family the forwarder leaves alone, and why.
type skip struct {
	family Family
	reason skipReason
}

// forwarding is the state of a family's forwarding sysctl in the pod's netns.
type forwarding int

const (
	forwardingOff forwarding = iota
	forwardingOn
	// forwardingAbsent: the sysctl file does not exist, the family is disabled.
	forwardingAbsent
)

// plan decides, per family, what to install and what to skip, from cfg and the
// forwarding sysctls. Families come in families() order.
func plan(cfg Config, fwd map[Family]forwarding) ([]familyRules, []skip) {
	var (
		install []familyRules
		skipped []skip
	)
	for _, fam := range families() {
		switch {
		case len(cfg.destinations(fam)) == 0:
			skipped = append(skipped, skip{fam, skipNoDestination})
		case fwd[fam] == forwardingAbsent:
			skipped = append(skipped, skip{fam, skipFamilyDisabled})
		case fwd[fam] != forwardingOn:
			skipped = append(skipped, skip{fam, skipForwardingOff})
		case len(cfg.sourceRanges(fam)) == 0:
			skipped = append(skipped, skip{fam, skipNoSourceRange})
		default:
			install = append(install, newFamilyRules(cfg, fam))
		}
	}
	return install, skipped
}

// newFamilyRules computes the rules of one family, following the script:
//
//   - filter: forwarded packets of the protocol to DEST_PORT (FORWARD sees them after
//     DNAT, which is why it matches DEST_PORT, klipper-lb PR #54) are accepted from
//     each source range and dropped when headed to a destination, so only SRC_RANGES
//     get through (2.3, 2.4);
//   - nat PREROUTING: the protocol on SRC_PORT is DNATed to destination:DEST_PORT;
//   - nat POSTROUTING: traffic to a destination is masqueraded, so replies come back
//     through the pod and the destination needs no route to the client.
//
// With several destinations the script's DNATs all match and the last inserted one
// wins (2.4). Here they share new connections round-robin: the first of n takes every
// n-th, the next every (n-1)-th of the rest, and the last takes what is left. NAT
// rules see only a connection's first packet, so a connection stays on one
// destination.
func newFamilyRules(cfg Config, fam Family) familyRules {
	names := newChainNames(cfg)
	dests := cfg.destinations(fam)

	fwd := chainRules{chain: chainRef{tableFilter, names.forward}}
	for _, src := range cfg.sourceRanges(fam) {
		fwd.rules = append(fwd.rules, rule{table: tableFilter, chain: names.forward, src: src, target: targetAccept})
	}
	for _, d := range dests {
		fwd.rules = append(fwd.rules, rule{table: tableFilter, chain: names.forward, dst: hostPrefix(d), target: targetDrop})
	}

	dnat := chainRules{chain: chainRef{tableNAT, names.dnat}}
	for i, d := range dests {
		// iptables takes a DNAT port only in a rule that names the protocol.
		r := rule{table: tableNAT, chain: names.dnat, proto: cfg.Proto, target: targetDNAT, toDest: netip.AddrPortFrom(d, cfg.DestPort)}
		if left := len(dests) - i; left > 1 {
			r.nth = nth{every: left, packet: 0}
		}
		dnat.rules = append(dnat.rules, r)
	}

	masq := chainRules{chain: chainRef{tableNAT, names.masquerade}}
	for _, d := range dests {
		masq.rules = append(masq.rules, rule{table: tableNAT, chain: names.masquerade, dst: hostPrefix(d), target: targetMasquerade})
	}

	return familyRules{
		family: fam,
		chains: []chainRules{fwd, masq, dnat},
		// The filter comes first and the DNAT last, so no packet is DNATed before the
		// source check is in place.
		jumps: []rule{
			{table: tableFilter, chain: chainForward, proto: cfg.Proto, dport: cfg.DestPort, target: names.forward},
			{table: tableNAT, chain: chainPostrouting, proto: cfg.Proto, dport: cfg.DestPort, target: names.masquerade},
			{table: tableNAT, chain: chainPrerouting, proto: cfg.Proto, dport: cfg.SrcPort, target: names.dnat},
		},
	}
}

// hostPrefix is a as a single-host prefix, the script's ip/32 or ip/128.
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
