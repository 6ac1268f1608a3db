// Package metricsreg registers a controller's metrics on the registry its caller gives, the
// one way every k3snet controller does it.
package metricsreg

import (
	"fmt"

	"k8s.io/component-base/metrics"
)

// Register registers each metric, and collector when it is not nil, on reg. A nil reg
// registers nothing: unregistered metrics are never created, so observing them costs nothing.
// A second controller on the same registry gets an error, not a panic.
func Register(reg metrics.KubeRegistry, collector metrics.StableCollector, ms ...metrics.Registerable) error {
	if reg == nil {
		return nil
	}
	for _, m := range ms {
		if err := reg.Register(m); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	if collector != nil {
		if err := reg.CustomRegister(collector); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}

// ResultCounter counts a controller's units of work by result (success or error).
type ResultCounter struct{ vec *metrics.CounterVec }

// NewResultCounter builds <subsystem>_<name> with a "result" label and registers it on reg; a
// nil reg registers nothing (the counter then counts nowhere).
func NewResultCounter(reg metrics.KubeRegistry, subsystem, name, help string) (ResultCounter, error) {
	vec := metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: subsystem, Name: name, Help: help, StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	return ResultCounter{vec}, Register(reg, nil, vec)
}

// Observe counts one unit of work that ended with err, and returns err.
func (r ResultCounter) Observe(err error) error {
	if r.vec == nil {
		return err // the zero ResultCounter counts nothing
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	r.vec.WithLabelValues(result).Inc()
	return err
}

// ResultCount reads what the ResultCounter named fullName (<subsystem>_<name>) on reg has
// counted for result; 0 when it has counted none.
func ResultCount(reg metrics.KubeRegistry, fullName, result string) (float64, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != fullName {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue(), nil
				}
			}
		}
	}
	return 0, nil
}
