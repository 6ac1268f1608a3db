package netpol

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
)

// Defaults of Options, K3s's where K3s has one.
const (
	// DefaultNodePortFirst and DefaultNodePortLast are K3s's --service-node-port-range.
	DefaultNodePortFirst, DefaultNodePortLast = 30000, 32767
	// DefaultMinSyncInterval spaces syncs so a burst of events (a Deployment scaling, a
	// namespace being relabelled) costs one sync, not one per event. kube-router has no such
	// bound and runs back-to-back full syncs.
	DefaultMinSyncInterval = time.Second
	// DefaultMaxSyncInterval is how often the rules are re-applied when nothing happens, to
	// repair drift: kube-router's IPTablesSyncPeriod, which K3s leaves at 5 minutes.
	DefaultMaxSyncInterval = 5 * time.Minute
)

// defaultServiceCIDR is K3s's default --service-cidr.
const defaultServiceCIDR = "10.43.0.0/16"

// Options configures the NetworkPolicy controller. The zero value of each field means K3s's
// default.
type Options struct {
	// NodeName is the node whose local pods this controller protects. Required. The pod CIDRs
	// of its default deny are every entry of that Node's spec.podCIDRs.
	NodeName string
	// ServiceCIDRs are the cluster's Service ranges, exempted on INPUT; empty
	// means K3s's 10.43.0.0/16.
	ServiceCIDRs []netip.Prefix
	// NodePortFirst and NodePortLast bound the NodePort range exempted on INPUT; both zero
	// means K3s's 30000-32767.
	NodePortFirst, NodePortLast uint16
	// Families are the IP families to program, IPv4 first when both. Empty means the families
	// of the Node's pod CIDRs (IPv4 alone when it has none), as K3s derives kube-router's
	// EnableIPv4/EnableIPv6 from the cluster CIDRs.
	Families []corev1.IPFamily
	// MinSyncInterval is the least time between the starts of two syncs; events in between
	// are merged into the next sync. Zero means DefaultMinSyncInterval.
	MinSyncInterval time.Duration
	// MaxSyncInterval is the most time between two syncs: a sync then re-applies the rules
	// even with no event, to repair what someone else changed. Zero means
	// DefaultMaxSyncInterval.
	MaxSyncInterval time.Duration
	// DenyICMPEcho refuses ICMP echo requests (pings) that no policy can allow, to and from
	// pods isolated in that direction. False, kube-router's behaviour, accepts them so ping
	// still diagnoses reachability; destination unreachable, time exceeded and IPv6
	// neighbour discovery are accepted either way.
	DenyICMPEcho bool
	// EventRecorder records the Events on NetworkPolicies. When nil, Start builds one that
	// writes through the controller's client and stops it when its context ends.
	EventRecorder record.EventRecorder
	// MetricsRegistry, if set, gets the controller's metrics (metrics.go).
	MetricsRegistry metrics.KubeRegistry
	// AfterFirstApply, if set, is called once, right after the first sync that programs the
	// kernel. That sync is the process's memory peak (every pod of the cluster listed and
	// compiled at once); a node agent whose steady state is far below it passes
	// debug.FreeOSMemory, so the peak is not kept resident until the runtime's own GC and
	// scavenger get round to it.
	AfterFirstApply func()
}

// withDefaults returns o with every unset field set to K3s's default. It copies the slices
// it fills, so the caller's Options are never shared with the controller.
func (o Options) withDefaults() Options {
	o.ServiceCIDRs = slices.Clone(o.ServiceCIDRs)
	if len(o.ServiceCIDRs) == 0 {
		o.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix(defaultServiceCIDR)}
	}
	if o.NodePortFirst == 0 && o.NodePortLast == 0 {
		o.NodePortFirst, o.NodePortLast = DefaultNodePortFirst, DefaultNodePortLast
	}
	o.Families = slices.Clone(o.Families)
	if o.MinSyncInterval == 0 {
		o.MinSyncInterval = DefaultMinSyncInterval
	}
	if o.MaxSyncInterval == 0 {
		o.MaxSyncInterval = DefaultMaxSyncInterval
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	for i, p := range o.ServiceCIDRs {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("ServiceCIDRs[%d] is not a valid prefix", i))
		}
	}
	if o.NodePortFirst > o.NodePortLast || (o.NodePortFirst == 0) != (o.NodePortLast == 0) {
		errs = append(errs, fmt.Errorf("NodePortFirst-NodePortLast %d-%d is not a port range", o.NodePortFirst, o.NodePortLast))
	}
	seen := map[corev1.IPFamily]bool{}
	for _, fam := range o.Families {
		switch {
		case fam != corev1.IPv4Protocol && fam != corev1.IPv6Protocol:
			errs = append(errs, fmt.Errorf("unknown IP family %q in Families", fam))
		case seen[fam]:
			errs = append(errs, fmt.Errorf("IP family %s listed twice in Families", fam))
		}
		seen[fam] = true
	}
	if o.MinSyncInterval < 0 || o.MaxSyncInterval < 0 {
		errs = append(errs, errors.New("sync intervals must not be negative"))
	}
	if o.MaxSyncInterval > 0 && o.MinSyncInterval > o.MaxSyncInterval {
		errs = append(errs, fmt.Errorf("MinSyncInterval %s exceeds MaxSyncInterval %s", o.MinSyncInterval, o.MaxSyncInterval))
	}
	return errors.Join(errs...)
}
