package packaged

import (
	"k8s.io/component-base/metrics"

	"github.com/k3snet/k3snet/internal/metricsreg"
)

// metricsSubsystem prefixes every metric name: packaged_*.
const metricsSubsystem = "packaged"

// resultCounter counts a unit of work by result (success or error).
type resultCounter struct{ vec *metrics.CounterVec }

// newResultCounter builds packaged_<name> and registers it on reg; a nil reg registers nothing.
func newResultCounter(reg metrics.KubeRegistry, name, help string) (resultCounter, error) {
	vec := metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: metricsSubsystem, Name: name, Help: help, StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	return resultCounter{vec}, metricsreg.Register(reg, nil, vec)
}

// observe counts one unit of work that ended with err, and returns err.
func (r resultCounter) observe(err error) error {
	if r.vec == nil {
		return err // a Controller not built by New counts nothing
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	r.vec.WithLabelValues(result).Inc()
	return err
}
