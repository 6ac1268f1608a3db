package packaged

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Template keys substituted in the packaged manifests at stage time.
const (
	varClusterDNS                  = "%{CLUSTER_DNS}%"
	varClusterDNSList              = "%{CLUSTER_DNS_LIST}%"
	varClusterDNSIPFamilyPolicy    = "%{CLUSTER_DNS_IPFAMILYPOLICY}%"
	varClusterDomain               = "%{CLUSTER_DOMAIN}%"
	varSystemDefaultRegistry       = "%{SYSTEM_DEFAULT_REGISTRY}%"
	varSystemDefaultRegistryRaw    = "%{SYSTEM_DEFAULT_REGISTRY_RAW}%"
	varTraefikChartContent         = "%{K3SNET_TRAEFIK_CHART}%"
	varTraefikCRDChartContent      = "%{K3SNET_TRAEFIK_CRD_CHART}%"
	defaultClusterDomain           = "cluster.local"
	ipFamilyPolicySingleStack      = "SingleStack"
	ipFamilyPolicyRequireDualStack = "RequireDualStack"
)

// Vars are the values Stage substitutes into the packaged manifests. The zero
// value of a field means K3s's default.
type Vars struct {
	// ClusterDNS are the cluster DNS IPs (--cluster-dns), at most one per family. The first
	// one is kube-dns's clusterIP. Default: 10.43.0.10, the 10th IP of K3s's default service CIDR.
	ClusterDNS []netip.Addr
	// ClusterDomain is the cluster domain (--cluster-domain). Default: cluster.local.
	ClusterDomain string
	// SystemDefaultRegistry prefixes the packaged images (--system-default-registry), for
	// example registry.example.com:5000. Empty means the images' own registries.
	SystemDefaultRegistry string
}

// withDefaults returns v with every unset field set to K3s's default.
func (v Vars) withDefaults() Vars {
	if len(v.ClusterDNS) == 0 {
		v.ClusterDNS = []netip.Addr{netip.AddrFrom4([4]byte{10, 43, 0, 10})}
	}
	if v.ClusterDomain == "" {
		v.ClusterDomain = defaultClusterDomain
	}
	v.SystemDefaultRegistry = strings.TrimSuffix(v.SystemDefaultRegistry, "/")
	return v
}

// Validate reports every invalid field at once.
func (v Vars) Validate() error {
	var errs []error
	if len(v.ClusterDNS) > 2 {
		errs = append(errs, fmt.Errorf("ClusterDNS has %d addresses, at most one per family is allowed", len(v.ClusterDNS)))
	}
	for _, ip := range v.ClusterDNS {
		if !ip.IsValid() {
			errs = append(errs, errors.New("ClusterDNS holds an invalid address"))
		}
	}
	if len(v.ClusterDNS) == 2 && v.ClusterDNS[0].Is4() == v.ClusterDNS[1].Is4() {
		errs = append(errs, fmt.Errorf("ClusterDNS %v: two addresses must be of different families", v.ClusterDNS))
	}
	return errors.Join(errs...)
}

// replacements returns the template keys and their values, defaults applied.
func (v Vars) replacements() map[string]string {
	v = v.withDefaults()
	ips := make([]string, 0, len(v.ClusterDNS))
	for _, ip := range v.ClusterDNS {
		ips = append(ips, ip.Unmap().String())
	}
	policy := ipFamilyPolicySingleStack
	if len(ips) > 1 {
		policy = ipFamilyPolicyRequireDualStack
	}
	prefix := ""
	if v.SystemDefaultRegistry != "" {
		prefix = v.SystemDefaultRegistry + "/"
	}
	return map[string]string{
		varClusterDNS:               ips[0],
		varClusterDNSList:           "[" + strings.Join(ips, ",") + "]",
		varClusterDNSIPFamilyPolicy: policy,
		varClusterDomain:            v.ClusterDomain,
		varSystemDefaultRegistry:    prefix,
		varSystemDefaultRegistryRaw: v.SystemDefaultRegistry,
	}
}

// render replaces every occurrence of every key of repl in content. The %{...}% delimiters
// make keys non-overlapping, so the order of replacement does not matter.
func render(content []byte, repl map[string]string) []byte {
	s := string(content)
	for k, v := range repl {
		s = strings.ReplaceAll(s, k, v)
	}
	return []byte(s)
}
