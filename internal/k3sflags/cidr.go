package k3sflags

import (
	"fmt"
	"net/netip"
)

// ParseCIDRs accepts one prefix per IP family, IPv4 first or IPv6 first, as K3s does for
// dual-stack clusters; no values means def.
func ParseCIDRs(values []string, def string) ([]netip.Prefix, error) {
	if len(values) == 0 {
		values = []string{def}
	}
	var out []netip.Prefix
	for _, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, err
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%s has host bits set (did you mean %s?)", v, p.Masked())
		}
		for _, seen := range out {
			if seen.Addr().Is4() == p.Addr().Is4() {
				return nil, fmt.Errorf("%s: at most one CIDR per IP family", v)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// TenthAddress is K3s's default cluster DNS address: 10.43.0.10 for 10.43.0.0/16.
func TenthAddress(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}
