package clustercidr

import (
	"errors"
	"fmt"
	"net/netip"
)

// minPerNodeHostBits is the smallest block: 16 addresses (the ClusterCIDR API's minimum
// perNodeHostBits).
const minPerNodeHostBits = 4

// parsedSpec is a valid ClusterCIDRSpec in the form the allocator uses.
type parsedSpec struct {
	prefixes [numFamilies]netip.Prefix // zero Prefix for an absent family
	hostBits int
	selector *nodeSelector
}

// ValidateClusterCIDRSpec checks spec against the validation rules of the ClusterCIDR API
// (networking.k8s.io/v1alpha1) and returns every broken
// rule at once, as FieldErrors joined with errors.Join (each matches ErrInvalidClusterCIDR):
//   - at least one of ipv4 and ipv6;
//   - each a CIDR of its family in canonical form (the network address, as CEL's
//     cidr(self) == cidr(self).masked() in crd.yaml); IPv4-mapped IPv6 is not IPv6;
//   - perNodeHostBits at least 4 and at most the host bits of every family given, because one
//     value is used for both families (K3s docs: dual-stack ClusterCIDRs share one
//     perNodeHostBits);
//   - the ClusterCIDR API's node selector rules (operators, values, keys, matchFields).
//
// It does not modify spec.
func ValidateClusterCIDRSpec(spec ClusterCIDRSpec) error {
	_, err := parseSpec(spec)
	return err
}

func parseSpec(spec ClusterCIDRSpec) (parsedSpec, error) {
	var ps parsedSpec
	var errs []error
	if spec.IPv4 == "" && spec.IPv6 == "" {
		errs = append(errs, &FieldError{"spec", "at least one of ipv4 and ipv6 is required"})
	}
	for f, s := range [numFamilies]string{ipv4: spec.IPv4, ipv6: spec.IPv6} {
		if s == "" {
			continue
		}
		p, err := parseFamilyPrefix(family(f), s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps.prefixes[f] = p
	}

	ps.hostBits = int(spec.PerNodeHostBits)
	const hb = "spec.perNodeHostBits"
	if ps.hostBits < minPerNodeHostBits {
		errs = append(errs, &FieldError{hb, fmt.Sprintf("%d is less than %d", ps.hostBits, minPerNodeHostBits)})
	}
	for f, p := range ps.prefixes {
		if !p.IsValid() {
			continue
		}
		if host := family(f).bits() - p.Bits(); ps.hostBits > host {
			errs = append(errs, &FieldError{hb, fmt.Sprintf("%d is more than the %d host bits of %s", ps.hostBits, host, p)})
		}
	}

	sel, err := compileNodeSelector(spec.NodeSelector)
	if err != nil {
		errs = append(errs, err)
	}
	ps.selector = sel
	if len(errs) > 0 {
		return parsedSpec{}, errors.Join(errs...)
	}
	return ps, nil
}

// parseFamilyPrefix parses the spec.ipv4 or spec.ipv6 field.
func parseFamilyPrefix(f family, s string) (netip.Prefix, error) {
	field := "spec.ipv4"
	if f == ipv6 {
		field = "spec.ipv6"
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, &FieldError{field, fmt.Sprintf("%q is not a CIDR", s)}
	case p.Addr().Is4In6() || familyOf(p.Addr()) != f:
		return netip.Prefix{}, &FieldError{field, fmt.Sprintf("%q is not an %s CIDR", s, f)}
	case p != p.Masked():
		return netip.Prefix{}, &FieldError{field, fmt.Sprintf("%q has host bits set: write %s", s, p.Masked())}
	}
	return p, nil
}
