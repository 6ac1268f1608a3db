package k3sflags

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/compose"
)

// K3s's defaults of the cluster flags.
const (
	DefaultClusterCIDR        = "10.42.0.0/16"
	DefaultServiceCIDR        = "10.43.0.0/16"
	DefaultClusterDomain      = "cluster.local"
	DefaultServiceLBNamespace = "kube-system"
)

// Cluster holds K3s's server flags of the cluster-wide controllers as given; Register adds
// them to a flag set and Settings validates them.
type Cluster struct {
	disable, clusterCIDR, serviceCIDR, clusterDNS List
	reservedHostPorts                             List
	disableCloudController, multiClusterCIDR      bool
	disableNodeIPAM, disableDeploy, disableHelm   bool
	clusterDomain, serviceLBNamespace, registry   string
	helmJobImage                                  string
}

// Register adds the flags to fs, with K3s's names, help and defaults.
func (c *Cluster) Register(fs *flag.FlagSet) {
	fs.Var(&c.disable, "disable", "do not deploy packaged components and delete any deployed ones (coredns, servicelb, traefik, local-storage, metrics-server, or any manifest name); repeatable, comma lists")
	fs.BoolVar(&c.disableCloudController, "disable-cloud-controller", false, "disable the cloud-controller stub's node handling")
	fs.BoolVar(&c.disableHelm, "disable-helm-controller", false, "do not run the Helm controller")
	fs.StringVar(&c.helmJobImage, "helm-job-image", "", "default image to use for helm jobs (default: K3s's klipper-helm image, behind --system-default-registry)")
	fs.BoolVar(&c.disableNodeIPAM, "disable-node-ipam", false, "do not allocate node pod CIDRs (the cluster's kube-controller-manager does, with --allocate-node-cidrs)")
	fs.BoolVar(&c.disableDeploy, "disable-deploy", false, "run neither the deploy nor the Helm controller, and stage no packaged manifests")
	fs.BoolVar(&c.multiClusterCIDR, "multi-cluster-cidr", false, "honour ClusterCIDR objects when allocating pod CIDRs (experimental in K3s)")
	fs.Var(&c.clusterCIDR, "cluster-cidr", "IPv4/IPv6 network CIDRs to use for pod IPs (default "+DefaultClusterCIDR+")")
	RegisterServiceCIDR(fs, &c.serviceCIDR)
	fs.Var(&c.clusterDNS, "cluster-dns", "IPv4/IPv6 cluster IP for the coredns service (default: the tenth address of the service CIDR, 10.43.0.10)")
	fs.StringVar(&c.clusterDomain, "cluster-domain", DefaultClusterDomain, "cluster domain")
	fs.StringVar(&c.serviceLBNamespace, "servicelb-namespace", DefaultServiceLBNamespace, "namespace of the pods of the servicelb component")
	fs.Var(&c.reservedHostPorts, "servicelb-reserved-host-ports", "node ports no LoadBalancer Service may claim, such as 10250,6443 (k3snet's; K3s reserves none); repeatable, comma lists")
	fs.StringVar(&c.registry, "system-default-registry", "", "private registry to prefix all system images with")
}

// RegisterServiceCIDR adds --service-cidr, which node-local controllers need too.
func RegisterServiceCIDR(fs *flag.FlagSet, serviceCIDR *List) {
	fs.Var(serviceCIDR, "service-cidr", "IPv4/IPv6 network CIDRs to use for service IPs (default "+DefaultServiceCIDR+")")
}

// Settings validates the flags and returns them as the controllers' settings; every problem
// goes to errs, naming its flag. DataDir and the switches only one binary has are left to the
// caller.
func (c *Cluster) Settings(errs *Errors) compose.ClusterSettings {
	s := compose.ClusterSettings{
		Disable:                c.disable,
		DisableCloudController: c.disableCloudController,
		DisableNodeIPAM:        c.disableNodeIPAM,
		DisableDeploy:          c.disableDeploy,
		DisableHelmController:  c.disableHelm,
		MultiClusterCIDR:       c.multiClusterCIDR,
		ClusterDomain:          c.clusterDomain,
		ServiceLBNamespace:     c.serviceLBNamespace,
		SystemDefaultRegistry:  c.registry,
		HelmJobImage:           c.helmJobImage,
	}
	var err error
	s.ClusterCIDRs, err = ParseCIDRs(c.clusterCIDR, DefaultClusterCIDR)
	errs.Add("cluster-cidr", err)
	s.ServiceCIDRs, err = ParseCIDRs(c.serviceCIDR, DefaultServiceCIDR)
	errs.Add("service-cidr", err)
	s.ClusterDNS, err = ccmstub.ParseIPList(c.clusterDNS...)
	errs.Add("cluster-dns", err)
	if err == nil && len(s.ClusterDNS) == 0 && len(s.ServiceCIDRs) > 0 {
		s.ClusterDNS = []netip.Addr{TenthAddress(s.ServiceCIDRs[0])}
	}
	if problems := validation.IsDNS1123Subdomain(s.ClusterDomain); len(problems) > 0 {
		errs.Add("cluster-domain", errors.New(strings.Join(problems, "; ")))
	}
	if strings.ContainsFunc(s.HelmJobImage, unicode.IsSpace) {
		errs.Add("helm-job-image", fmt.Errorf("%q is not an image reference", s.HelmJobImage))
	}
	s.ServiceLBReservedHostPorts, err = ParsePorts(c.reservedHostPorts)
	errs.Add("servicelb-reserved-host-ports", err)
	if problems := validation.IsDNS1123Label(s.ServiceLBNamespace); len(problems) > 0 {
		errs.Add("servicelb-namespace", errors.New(strings.Join(problems, "; ")))
	}
	return s
}

// ParsePorts parses port numbers (1-65535).
func ParsePorts(items []string) ([]int32, error) {
	var out []int32
	var errs []error
	for _, item := range items {
		p, err := strconv.ParseUint(item, 10, 16)
		if err != nil || p == 0 {
			errs = append(errs, fmt.Errorf("%q is not a port (1-65535)", item))
			continue
		}
		out = append(out, int32(p))
	}
	return out, errors.Join(errs...)
}
