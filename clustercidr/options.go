package clustercidr

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
)

// Options configures the pod CIDR allocation controller. The zero value of each field means
// K3s's default.
type Options struct {
	// ClusterCIDRs are the --cluster-cidr ranges, at most one per IP family. Default
	// 10.42.0.0/16, K3s's default.
	ClusterCIDRs []netip.Prefix
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
	ServiceCIDRs []netip.Prefix

	// MultiClusterCIDR makes the controller honour ClusterCIDR objects (K3s's
	// --multi-cluster-cidr): it installs the CRD, creates default-cluster-cidr from
	// ClusterCIDRs once, and allocates from every ClusterCIDR. Without it the controller
	// allocates from ClusterCIDRs alone, as kube-controller-manager's range allocator does in
	// K3s, and neither installs the CRD nor reads or writes ClusterCIDR objects.
	MultiClusterCIDR bool
	// Dynamic reads and writes ClusterCIDR objects and installs their CRD. Required with
	// MultiClusterCIDR. It is an option rather than an argument of New because only that mode
	// needs it, and client-go has no typed client for the CRD (so how the CRD is reached stays
	// inside the package); the caller builds it from the same rest.Config as the clientset.
	Dynamic dynamic.Interface

	// EventRecorder records the Events on Nodes and ClusterCIDRs. When nil, Start builds one
	// that writes through the controller's client and stops it when its context ends.
	EventRecorder record.EventRecorder

	// MetricsRegistry, if set, gets the controller's metrics: clustercidr_allocations_total and
	// clustercidr_releases_total by ClusterCIDR, and clustercidr_free_cidrs by ClusterCIDR and
	// family. nil registers none. One registry takes one Controller.
	MetricsRegistry metrics.KubeRegistry

	// Workers is the number of node workers. Default 64: Allocate is serialised inside the
	// allocator, so workers only overlap the Node patches' round trips. On the 2-core bench
	// (BenchmarkEndToEnd/x1, kine) 1,000 Nodes were allocated in 9–17 s by 4 workers,
	// 5.4–6.4 s by 16, 4.4–5.0 s by 32, 3.3–5.4 s by 64 and 2.8–4.3 s by 128.
	Workers int
}

// Defaults of Options, K3s's and kube-controller-manager's.
const defaultWorkers = 64

// defaultClusterCIDR is K3s's --cluster-cidr default.
var defaultClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")

// withDefaults returns o with every unset field set to K3s's default.
func (o Options) withDefaults() Options {
	if len(o.ClusterCIDRs) == 0 {
		o.ClusterCIDRs = []netip.Prefix{defaultClusterCIDR}
	}
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
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
	if o.MultiClusterCIDR && o.Dynamic == nil {
		errs = append(errs, errors.New("option Dynamic: required with MultiClusterCIDR"))
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
func parsePrefixes(field string, in []netip.Prefix) ([]netip.Prefix, error) {
	for _, p := range in {
		if !p.IsValid() {
			return nil, fmt.Errorf("%s: %v is not a valid prefix", field, p)
		}
	}
	return in, nil
}
