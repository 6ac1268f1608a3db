package servicelb

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
)

// metricsSubsystem prefixes every metric name: servicelb_*.
const metricsSubsystem = "servicelb"

// controllerMetrics are the controller's Prometheus metrics. Counters move as the workers sync;
// the served-Services gauge is computed at scrape time from the Service cache, so it needs no
// bookkeeping on deletions.
type controllerMetrics struct {
	metrics.BaseStableCollector

	// syncs counts Service syncs, by result (success or error).
	syncs *metrics.CounterVec
	// statusUpdates counts status.loadBalancer writes.
	statusUpdates *metrics.Counter
	// served describes the served-Services gauge.
	served *metrics.Desc
	// c gives the collector the Service lister.
	c *Controller
}

// newControllerMetrics builds the metrics and registers them on reg. A nil reg registers
// nothing.
func newControllerMetrics(c *Controller, reg metrics.KubeRegistry) (*controllerMetrics, error) {
	m := &controllerMetrics{
		syncs: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "syncs_total",
			Help:           "LoadBalancer Service syncs, by result (success or error).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"result"}),
		statusUpdates: metrics.NewCounter(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "status_updates_total",
			Help:           "Writes of a Service's status.loadBalancer.ingress.",
			StabilityLevel: metrics.ALPHA,
		}),
		served: metrics.NewDesc(metricsSubsystem+"_served_services",
			"LoadBalancer Services this controller serves.", nil, nil, metrics.ALPHA, ""),
		c: c,
	}
	if err := metricsreg.Register(reg, m, m.syncs, m.statusUpdates); err != nil {
		return nil, err
	}
	return m, nil
}

// DescribeWithStability implements metrics.StableCollector.
func (m *controllerMetrics) DescribeWithStability(ch chan<- *metrics.Desc) { ch <- m.served }

// CollectWithStability implements metrics.StableCollector: the served Services in the cache,
// once Start has set the lister.
func (m *controllerMetrics) CollectWithStability(ch chan<- metrics.Metric) {
	lister := m.c.serviceLister()
	if lister == nil {
		return
	}
	svcs, err := lister.List(labels.Everything())
	if err != nil {
		return
	}
	n := 0
	for _, svc := range svcs {
		if serves(svc, m.c.opts.LoadBalancerClass) {
			n++
		}
	}
	ch <- metrics.NewLazyConstMetric(m.served, metrics.GaugeValue, float64(n))
}
