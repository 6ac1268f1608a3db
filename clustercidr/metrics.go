package clustercidr

import (
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
)

// metricsSubsystem prefixes every metric name: clustercidr_*.
const metricsSubsystem = "clustercidr"

// controllerMetrics are the controller's Prometheus metrics. Counters move as the workers
// allocate and release; the free-block gauge is computed at scrape time by the collector,
// since Allocator.Usage walks the ClusterCIDR's used ranges and is too costly per node.
type controllerMetrics struct {
	metrics.BaseStableCollector

	// allocations counts blocks written to Nodes, by ClusterCIDR.
	allocations *metrics.CounterVec
	// releases counts blocks freed by deleted Nodes, by ClusterCIDR.
	releases *metrics.CounterVec
	// free describes the free-block gauge, by ClusterCIDR and IP family.
	free *metrics.Desc
	// c gives the collector the allocator and the ClusterCIDR names.
	c *Controller
}

// newControllerMetrics builds the metrics and registers them on reg. A nil reg registers
// nothing.
func newControllerMetrics(c *Controller, reg metrics.KubeRegistry) (*controllerMetrics, error) {
	m := &controllerMetrics{
		allocations: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "allocations_total",
			Help:           "Pod CIDR allocations written to Nodes, by ClusterCIDR.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"cluster_cidr"}),
		releases: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "releases_total",
			Help:           "Pod CIDR allocations freed by deleted Nodes, by ClusterCIDR.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"cluster_cidr"}),
		free: metrics.NewDesc(metricsSubsystem+"_free_cidrs",
			"Per-node blocks still free in a ClusterCIDR, by IP family (saturates at 2^64 for IPv6).",
			[]string{"cluster_cidr", "family"}, nil, metrics.ALPHA, ""),
		c: c,
	}
	if err := metricsreg.Register(reg, m, m.allocations, m.releases); err != nil {
		return nil, err
	}
	return m, nil
}

// DescribeWithStability implements metrics.StableCollector.
func (m *controllerMetrics) DescribeWithStability(ch chan<- *metrics.Desc) { ch <- m.free }

// CollectWithStability implements metrics.StableCollector: one gauge per family of every
// ClusterCIDR the allocator knows, once this instance allocates.
func (m *controllerMetrics) CollectWithStability(ch chan<- metrics.Metric) {
	alloc := m.c.allocator()
	if alloc == nil {
		return
	}
	for _, name := range m.c.clusterCIDRNames() {
		usage, ok := alloc.Usage(name)
		if !ok {
			continue
		}
		for _, u := range usage {
			family := "ipv4"
			if u.Prefix.Addr().Is6() {
				family = "ipv6"
			}
			ch <- metrics.NewLazyConstMetric(m.free, metrics.GaugeValue, float64(u.Free), name, family)
		}
	}
}

// clusterCIDRNames lists the ClusterCIDRs the controller uses, sorted.
func (c *Controller) clusterCIDRNames() []string {
	if c.ccs == nil {
		return []string{DefaultClusterCIDRName}
	}
	objs, err := c.ccs.List(labels.Everything())
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			names = append(names, u.GetName())
		}
	}
	sort.Strings(names)
	return names
}
