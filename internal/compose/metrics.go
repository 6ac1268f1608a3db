package compose

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// ControllerMetrics serves every controller's metrics next to component-base's (process, Go
// runtime, client-go). Each controller gets a registry per term: a leader-elected controller
// is built anew whenever this instance leads again and registers its metrics again, which one
// shared registry would refuse as duplicates; the new term's registry replaces the old one.
type ControllerMetrics struct {
	mu   sync.Mutex
	regs map[string]metrics.KubeRegistry
}

// NewControllerMetrics returns a ControllerMetrics with no controller registry yet.
func NewControllerMetrics() *ControllerMetrics {
	return &ControllerMetrics{regs: map[string]metrics.KubeRegistry{}}
}

// Fresh returns a new registry for the named controller, replacing its previous term's.
func (m *ControllerMetrics) Fresh(name string) metrics.KubeRegistry {
	reg := metrics.NewKubeRegistry()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.regs[name] = reg
	return reg
}

// Gather implements prometheus.Gatherer over the legacy registry and every controller's.
func (m *ControllerMetrics) Gather() ([]*dto.MetricFamily, error) {
	m.mu.Lock()
	gatherers := prometheus.Gatherers{legacyregistry.DefaultGatherer}
	names := make([]string, 0, len(m.regs))
	for name := range m.regs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		gatherers = append(gatherers, m.regs[name])
	}
	m.mu.Unlock()
	return gatherers.Gather()
}
