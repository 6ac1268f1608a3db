package podnet

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// Flannel's chain names, so K3s's killall (which drops every rule mentioning flannel) and
// users' habits keep working.
const (
	postroutingChain = "FLANNEL-POSTRTG"
	forwardChain     = "FLANNEL-FWD"
	jumpComment      = "k3snet pod network"
)

// multicast ranges are never masqueraded, as flannel leaves them alone.
var multicast = map[bool]netip.Prefix{false: netip.MustParsePrefix("224.0.0.0/4"), true: netip.MustParsePrefix("ff00::/8")}

// natRules are FLANNEL-POSTRTG's rules for one family: traffic from this node's pods to any
// pod range of the cluster keeps its source address; traffic from them to anywhere else
// (outside the cluster) is masqueraded behind the node's address.
func natRules(own, podRanges []netip.Prefix, ipv6 bool) []string {
	var out []string
	for _, src := range own {
		if src.Addr().Is6() != ipv6 {
			continue
		}
		for _, dst := range podRanges {
			if dst.Addr().Is6() == ipv6 {
				out = append(out, fmt.Sprintf("-A %s -s %s -d %s -j RETURN", postroutingChain, src, dst))
			}
		}
		out = append(out, fmt.Sprintf("-A %s -s %s -d %s -j RETURN", postroutingChain, src, multicast[ipv6]),
			fmt.Sprintf("-A %s -s %s -j MASQUERADE --random-fully", postroutingChain, src))
	}
	return out
}

// forwardRules are FLANNEL-FWD's rules for one family: pod traffic is forwarded even where the
// host's FORWARD policy drops (Docker sets it so). NetworkPolicy's chain is jumped to first,
// so what it refuses never gets here.
func forwardRules(podRanges []netip.Prefix, ipv6 bool) []string {
	var out []string
	for _, r := range podRanges {
		if r.Addr().Is6() == ipv6 {
			out = append(out, fmt.Sprintf("-A %s -s %s -j ACCEPT", forwardChain, r), fmt.Sprintf("-A %s -d %s -j ACCEPT", forwardChain, r))
		}
	}
	return out
}

// restoreText is the iptables-restore --noflush input that replaces both chains at once.
func restoreText(nat, forward []string) string {
	var b strings.Builder
	b.WriteString("*nat\n:" + postroutingChain + " - [0:0]\n")
	for _, r := range nat {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n*filter\n:" + forwardChain + " - [0:0]\n")
	for _, r := range forward {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// podRangesOf reduces ranges to the ones no other range contains, sorted, so each pod range of
// the cluster gets one rule.
func podRangesOf(ranges []netip.Prefix) []netip.Prefix {
	widestFirst := slices.Clone(ranges)
	slices.SortFunc(widestFirst, func(a, b netip.Prefix) int { return cmp.Compare(a.Bits(), b.Bits()) })
	var out []netip.Prefix
	for _, r := range widestFirst {
		if r.IsValid() && !slices.ContainsFunc(out, func(o netip.Prefix) bool { return o.Contains(r.Addr()) && o.Addr().Is4() == r.Addr().Is4() }) {
			out = append(out, r.Masked())
		}
	}
	sortPrefixes(out)
	return out
}

// syncMasquerade installs both chains and their jumps for every family the node has pods of.
func syncMasquerade(ctx context.Context, own, podRanges []netip.Prefix) error {
	var errs []error
	for _, ipv6 := range []bool{false, true} {
		if !hasFamily(own, ipv6) {
			continue
		}
		text := restoreText(natRules(own, podRanges, ipv6), forwardRules(podRanges, ipv6))
		cmd := "iptables-restore"
		if ipv6 {
			cmd = "ip6tables-restore"
		}
		c := exec.CommandContext(ctx, cmd, "--noflush", "--wait")
		c.Stdin = strings.NewReader(text)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if err := c.Run(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(stderr.String())))
			continue
		}
		ipt, err := newIPTables(ipv6)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs,
			ipt.AppendUnique("nat", "POSTROUTING", "-m", "comment", "--comment", jumpComment, "-j", postroutingChain),
			ipt.AppendUnique("filter", "FORWARD", "-m", "comment", "--comment", jumpComment, "-j", forwardChain))
	}
	return errors.Join(errs...)
}

// RemoveRules deletes podnet's chains and the jumps to them, for both families.
func RemoveRules() error {
	var errs []error
	for _, ipv6 := range []bool{false, true} {
		ipt, err := newIPTables(ipv6)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range []struct{ table, parent, chain string }{{"nat", "POSTROUTING", postroutingChain}, {"filter", "FORWARD", forwardChain}} {
			// iptables cannot even look for a jump to a chain that does not exist.
			exists, err := ipt.ChainExists(c.table, c.chain)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !exists {
				continue
			}
			errs = append(errs, ipt.DeleteIfExists(c.table, c.parent, "-m", "comment", "--comment", jumpComment, "-j", c.chain),
				ipt.ClearAndDeleteChain(c.table, c.chain))
		}
	}
	return errors.Join(errs...)
}

func newIPTables(ipv6 bool) (*iptables.IPTables, error) {
	proto := iptables.ProtocolIPv4
	if ipv6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.NewWithProtocol(proto)
	if err != nil {
		return nil, fmt.Errorf("podnet: %w", err)
	}
	return ipt, nil
}

func hasFamily(prefixes []netip.Prefix, ipv6 bool) bool {
	for _, p := range prefixes {
		if p.Addr().Is6() == ipv6 {
			return true
		}
	}
	return false
}
