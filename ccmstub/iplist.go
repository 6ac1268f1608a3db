package ccmstub

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/internal/nodeaddr"
)

// ParseIPList parses the values of a repeatable IP flag such as --node-ip or
// --node-external-ip, each of which may itself be a comma list, as K3s's string-slice flags
// are: --node-ip=10.0.0.5,fd00::5 --node-ip 10.0.0.6. IPv4 and IPv6 are both accepted and keep
// their order (the first IP's family is the node's primary family); blank items are skipped,
// repeats dropped, and IPv4-mapped IPv6 addresses turned into IPv4. Addresses no other host
// can reach the node at (unspecified, loopback, multicast, link-local, broadcast, zoned) are
// errors, where K3s accepts any address that parses (--node-external-ip=0.0.0.0 included).
// Every invalid item is reported, not only the first.
func ParseIPList(values ...string) ([]netip.Addr, error) {
	var (
		out  []netip.Addr
		seen = map[netip.Addr]bool{}
		errs []error
	)
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			a, err := parseIP(item)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// parseIP parses one IP address as it may appear on a node, refusing those nodeaddr.Check
// refuses.
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if err := nodeaddr.Check(a); err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}

// checkDNSName accepts a host or domain name for a node address: a DNS-1123 subdomain, compared
// case-insensitively because K3s writes the OS hostname as it is.
func checkDNSName(s string) error {
	if errs := validation.IsDNS1123Subdomain(strings.ToLower(s)); len(errs) > 0 {
		return fmt.Errorf("%q is not a DNS name: %s", s, strings.Join(errs, "; "))
	}
	return nil
}
