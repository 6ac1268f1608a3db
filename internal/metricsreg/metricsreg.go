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
