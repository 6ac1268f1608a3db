package servicelb

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// sourceRanges returns the client CIDRs the LB pods accept (SRC_RANGES, as K3s sets it):
// spec.loadBalancerSourceRanges if set, else the source-ranges annotation, else everyone.
// "If specified and supported by the platform, traffic through the cloud-provider load-balancer
// will be restricted to the specified client IPs" (Service API).
//
// An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is turned into the IPv4 range it maps
// (10.0.0.0/8): IPv4 clients reach the LB pod as IPv4 packets, which an IPv6 rule never
// matches, so taken as written it would silently close the port to the clients it names.
// Each entry is masked to its canonical form and the list is sorted by address and
// deduplicated, so the DaemonSet does not change when the same set is written in another order
// (K3s joins them in map order and churns the pod template).
//
// The default is K3s's: the upstream default 0.0.0.0/0, plus ::/0 when the Service has an IPv6
// family, so an IPv6-only Service gets both. A list of 0.0.0.0/0 alone gets ::/0 added the same
// way, as in K3s, because users write the upstream IPv4 default to mean "everyone".
func sourceRanges(svc *corev1.Service, families []corev1.IPFamily) ([]string, field.ErrorList) {
	var (
		raw  []string
		path func(i int) *field.Path
	)
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		raw = svc.Spec.LoadBalancerSourceRanges
		path = func(i int) *field.Path { return field.NewPath("spec", "loadBalancerSourceRanges").Index(i) }
	} else if v := strings.TrimSpace(svc.Annotations[SourceRangesAnnotation]); v != "" {
		raw = strings.Split(v, ",")
		path = func(int) *field.Path { return field.NewPath("metadata", "annotations").Key(SourceRangesAnnotation) }
	}

	var errs field.ErrorList
	prefixes := make([]netip.Prefix, 0, len(raw)+1)
	for i, r := range raw {
		r = strings.TrimSpace(r)
		if r == "" {
			continue // "a,,b" or a trailing comma in the annotation
		}
		p, err := netip.ParsePrefix(r)
		if err != nil {
			errs = append(errs, field.Invalid(path(i), r, "must be a CIDR such as 192.0.2.0/24 or 2001:db8::/32"))
			continue
		}
		prefixes = append(prefixes, unmapPrefix(p).Masked())
	}
	if len(errs) > 0 {
		return nil, errs
	}

	allIPv4 := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	allIPv6 := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	if len(prefixes) == 0 {
		prefixes = append(prefixes, allIPv4)
	}
	if slices.Contains(families, corev1.IPv6Protocol) && len(prefixes) == 1 && prefixes[0] == allIPv4 {
		prefixes = append(prefixes, allIPv6)
	}

	// Addr.Compare puts IPv4 before IPv6 and orders numerically.
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	prefixes = slices.Compact(prefixes)
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = p.String()
	}
	return out, nil
}

// unmapPrefix returns the IPv4 range an IPv4-mapped IPv6 range (::ffff:0:0/96 or longer)
// covers, and any other prefix as it is.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}
