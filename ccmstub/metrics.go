package ccmstub

import (
	"sync/atomic"

	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
)

// metricsSubsystem prefixes every metric name: ccmstub_*.
const metricsSubsystem = "ccmstub"

// controllerMetrics are the stub's Prometheus metrics. The counters move as the workers sync;
// the uninitialized-nodes gauge is counted at scrape time from the node cache, so a node the
// stub cannot initialize (no addresses yet, provided IP not found) shows there without any
// bookkeeping.
type controllerMetrics struct {
	metrics.BaseStableCollector

	// syncs counts node syncs, by result (success or error).
	syncs *metrics.CounterVec
	// initialized counts nodes whose uninitialized taint the stub removed.
	initialized *metrics.Counter
	// uninitialized describes the gauge of nodes that still carry the taint.
	uninitialized *metrics.Desc
	// nodes is the node lister, stored by Start and read by scrapes.
	nodes atomic.Pointer[corelisters.NodeLister]
}

// newControllerMetrics builds the metrics and registers them on reg. A nil reg registers
// nothing.
func newControllerMetrics(reg metrics.KubeRegistry) (*controllerMetrics, error) {
	m := &controllerMetrics{
		syncs: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "node_syncs_total",
			Help:           "Node syncs, by result (success or error).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"result"}),
		initialized: metrics.NewCounter(&metrics.CounterOpts{
			Subsystem: metricsSubsystem, Name: "nodes_initialized_total",
			Help:           "Nodes whose node.cloudprovider.kubernetes.io/uninitialized taint was removed.",
			StabilityLevel: metrics.ALPHA,
		}),
		uninitialized: metrics.NewDesc(metricsSubsystem+"_uninitialized_nodes",
			"Nodes that still carry the node.cloudprovider.kubernetes.io/uninitialized taint.", nil, nil, metrics.ALPHA, ""),
	}
	if err := metricsreg.Register(reg, m, m.syncs, m.initialized); err != nil {
		return nil, err
	}
	return m, nil
}

// observeSync counts one node sync.
func (m *controllerMetrics) observeSync(err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.syncs.WithLabelValues(result).Inc()
}

// DescribeWithStability implements metrics.StableCollector.
func (m *controllerMetrics) DescribeWithStability(ch chan<- *metrics.Desc) { ch <- m.uninitialized }

// CollectWithStability implements metrics.StableCollector: the tainted nodes in the cache,
// once Start has set the lister.
func (m *controllerMetrics) CollectWithStability(ch chan<- metrics.Metric) {
	lister := m.nodes.Load()
	if lister == nil {
		return
	}
	nodes, err := (*lister).List(labels.Everything())
	if err != nil {
		return
	}
	n := 0
	for _, node := range nodes {
		if hasUninitializedTaint(node) {
			n++
		}
	}
	ch <- metrics.NewLazyConstMetric(m.uninitialized, metrics.GaugeValue, float64(n))
}
