package servicelb

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// serviceFamilies returns the IP families of svc in the Service's order of preference:
// spec.ipFamilies, which the API server fills for every Service that has cluster IPs; failing
// that, the families of spec.clusterIPs; failing that, IPv4 alone. The DaemonSet (sysctls,
// default source ranges) and the status (ingress order) both use it, so they always agree.
func serviceFamilies(svc *corev1.Service) []corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies
	}
	var fams []corev1.IPFamily
	for _, ip := range clusterIPs(svc) {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		if fam := addrFamily(addr); !slices.Contains(fams, fam) {
			fams = append(fams, fam)
		}
	}
	if len(fams) == 0 {
		return []corev1.IPFamily{corev1.IPv4Protocol}
	}
	return fams
}

// clusterIPs returns spec.clusterIPs, or spec.clusterIP on objects written before dual-stack.
// "None" (headless) is not an address and is dropped.
func clusterIPs(svc *corev1.Service) []string {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, ip)
		}
	}
	return out
}

// addrFamily returns the family of addr; an IPv4-mapped IPv6 address counts as IPv4.
func addrFamily(addr netip.Addr) corev1.IPFamily {
	if addr.Unmap().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}
