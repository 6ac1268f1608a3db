package clustercidr

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/component-base/metrics"
)

// Options configures the pod CIDR allocation controller. The zero value of each field means
// K3s's default.
type Options struct {
	// ClusterCIDRs are the --cluster-cidr ranges, at most one per IP family. Default
	// 10.42.0.0/16, K3s's default.
	ClusterCIDRs []string
	// NodeCIDRMaskSizeIPv4 and NodeCIDRMaskSizeIPv6 are kube-controller-manager's
	// --node-cidr-mask-size-ipv4/-ipv6: the prefix length of each node's block in the default
	// range; 0 means /24 and /64. Without MultiClusterCIDR each family keeps its own, as
	// K3s's range allocator does (a dual-stack node gets a /24 and a /64). With it they become
	// the default ClusterCIDR's one perNodeHostBits (upstream's dual-stack rule: /24 + /64
	// gives 8, so a /24 and a /120).
	NodeCIDRMaskSizeIPv4 int
	NodeCIDRMaskSizeIPv6 int
	// ServiceCIDRs are the --service-cluster-ip-range ranges; no pod CIDR overlapping them is
	// handed out. Default none.
	ServiceCIDRs []string

	// MultiClusterCIDR makes the controller honour ClusterCIDR objects (K3s's
	// --multi-cluster-cidr): it installs the CRD, creates default-cluster-cidr from
	// ClusterCIDRs once, and allocates from every ClusterCIDR. Without it the controller
	// allocates from ClusterCIDRs alone, as kube-controller-manager's range allocator does in
	// K3s, and neither installs the CRD nor reads or writes ClusterCIDR objects.
	MultiClusterCIDR bool
	// DynamicClient reads and writes ClusterCIDR objects and installs their CRD. Required with
	// MultiClusterCIDR. It is an option rather than an argument of New because only that mode
	// needs it, and client-go has no typed client for the CRD (so how the CRD is reached stays
	// inside the package); the caller builds it from the same rest.Config as the clientset.
	DynamicClient dynamic.Interface

	// MetricsRegistry, if set, gets the controller's metrics: clustercidr_allocations_total and
	// clustercidr_releases_total by ClusterCIDR, and clustercidr_free_cidrs by ClusterCIDR and
	// family. nil registers none. One registry takes one Controller.
	MetricsRegistry metrics.KubeRegistry

	// Workers is the number of node workers. Default 64: Allocate is serialised inside the
	// allocator, so workers only overlap the Node patches' round trips. On the 2-core bench
	// (BenchmarkEndToEnd1000Nodes, kine) 1,000 Nodes were allocated in 9–17 s by 4 workers,
	// 5.4–6.4 s by 16, 4.4–5.0 s by 32, 3.3–5.4 s by 64 and 2.8–4.3 s by 128.
	Workers int

	// LeaseName, when set, makes the controller allocate only while it holds the
	// coordination.k8s.io Lease of that name in LeaseNamespace. Run several instances (HA
	// servers) with the same name. Leave it empty when only one instance runs, or when the
	// embedding process already runs its controllers under its own leader election, as K3s does.
	// The node patches are conditional on each Node's resourceVersion in both cases, but a
	// precondition on one Node cannot stop two allocators from giving the same block to two
	// different Nodes: the Lease is what keeps a second allocator idle.
	LeaseName string
	// LeaseNamespace holds the Lease. Default kube-system.
	LeaseNamespace string
	// Identity names this instance in the Lease. Default the host name and a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election. Defaults 15 s, 10 s and
	// 2 s, kube-controller-manager's.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// Defaults of Options, K3s's and kube-controller-manager's.
const (
	defaultClusterCIDR    = "10.42.0.0/16"
	defaultWorkers        = 64
	defaultLeaseNamespace = "kube-system"
	defaultLeaseDuration  = 15 * time.Second
	defaultRenewDeadline  = 10 * time.Second
	defaultRetryPeriod    = 2 * time.Second
)

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if len(o.ClusterCIDRs) == 0 {
		o.ClusterCIDRs = []string{defaultClusterCIDR}
	}
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
	}
	if o.LeaseNamespace == "" {
		o.LeaseNamespace = defaultLeaseNamespace
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = defaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = defaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = defaultRetryPeriod
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.MultiClusterCIDR {
		if _, err := o.defaultSpec(); err != nil {
			errs = append(errs, err)
		}
	} else if _, _, err := o.defaultRange(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parsePrefixes("ServiceCIDRs", o.ServiceCIDRs); err != nil {
		errs = append(errs, err)
	}
	if o.MultiClusterCIDR && o.DynamicClient == nil {
		errs = append(errs, errors.New("DynamicClient: required with MultiClusterCIDR"))
	}
	if o.LeaseName != "" && o.RenewDeadline >= o.LeaseDuration {
		errs = append(errs, fmt.Errorf("RenewDeadline %s: must be shorter than LeaseDuration %s", o.RenewDeadline, o.LeaseDuration))
	}
	return errors.Join(errs...)
}

// defaultSpec is the spec of the default ClusterCIDR built from the flags.
func (o Options) defaultSpec() (ClusterCIDRSpec, error) {
	prefixes, err := parsePrefixes("ClusterCIDRs", o.ClusterCIDRs)
	if err != nil {
		return ClusterCIDRSpec{}, err
	}
	spec, err := DefaultClusterCIDRSpec(prefixes, o.NodeCIDRMaskSizeIPv4, o.NodeCIDRMaskSizeIPv6)
	if err != nil {
		return ClusterCIDRSpec{}, fmt.Errorf("ClusterCIDRs %v: %w", o.ClusterCIDRs, err)
	}
	return spec, nil
}

// defaultRange is the range allocated from without MultiClusterCIDR: the ClusterCIDRs and
// each family's node mask, checked as AddRange checks them.
func (o Options) defaultRange() ([]netip.Prefix, [numFamilies]int, error) {
	var masks [numFamilies]int
	prefixes, err := parsePrefixes("ClusterCIDRs", o.ClusterCIDRs)
	if err != nil {
		return nil, masks, err
	}
	masks[ipv4] = cmp.Or(o.NodeCIDRMaskSizeIPv4, defaultNodeMaskIPv4)
	masks[ipv6] = cmp.Or(o.NodeCIDRMaskSizeIPv6, defaultNodeMaskIPv6)
	if _, err := newRange(DefaultClusterCIDRName, prefixes, masks[ipv4], masks[ipv6]); err != nil {
		return nil, masks, fmt.Errorf("ClusterCIDRs %v: %w", o.ClusterCIDRs, err)
	}
	return prefixes, masks, nil
}

// parsePrefixes parses CIDR strings, naming the option in the error.
func parsePrefixes(field string, in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		out = append(out, p)
	}
	return out, nil
}
