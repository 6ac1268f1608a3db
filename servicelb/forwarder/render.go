package forwarder

import "strconv"

// args renders r as the rule specification iptables takes after -A/-I/-C/-D CHAIN.
//
// The order and spelling are those iptables -S prints back (-s, -d, -p, -m <proto>
// --dport, -m statistic, -j), so a chain's listing can be compared with what the
// forwarder wants and left alone when equal. A /0 source or destination is left
// out, as iptables leaves it out of the listing, and a prefix is masked to its
// network, as iptables lists it.
func (r rule) args() []string {
	var a []string
	if r.src.IsValid() && r.src.Bits() > 0 {
		a = append(a, "-s", r.src.Masked().String())
	}
	if r.dst.IsValid() && r.dst.Bits() > 0 {
		a = append(a, "-d", r.dst.Masked().String())
	}
	if r.proto != "" {
		p := r.proto.iptables()
		a = append(a, "-p", p)
		if r.dport != 0 {
			a = append(a, "-m", p, "--dport", strconv.Itoa(int(r.dport)))
		}
	}
	if r.nth.every > 1 {
		a = append(a, "-m", "statistic", "--mode", "nth",
			"--every", strconv.Itoa(r.nth.every), "--packet", strconv.Itoa(r.nth.packet))
	}
	a = append(a, "-j", r.target)
	if r.target == targetDNAT {
		// AddrPort.String brackets IPv6 ([fd00::1]:80), as --to-destination wants it.
		a = append(a, "--to-destination", r.toDest.String())
	}
	return a
}

// listing renders the rules of c the way `iptables -t TABLE -S CHAIN` lists them,
// without the leading -N line.
func (c chainRules) listing() []string {
	out := make([]string, 0, len(c.rules))
	for _, r := range c.rules {
		line := "-A " + c.chain.name
		for _, a := range r.args() {
			line += " " + a
		}
		out = append(out, line)
	}
	return out
}
