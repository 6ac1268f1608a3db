package helmchart

import "slices"

// Claim is what a helm controller does with a HelmChart before anything else.
type Claim int

const (
	// ClaimIgnore: not ours (no chart, unmanaged, or managed by another controller).
	ClaimIgnore Claim = iota
	// ClaimTake: nobody claimed it yet; write the managed-by annotation first.
	ClaimTake
	// ClaimOwned: ours to reconcile.
	ClaimOwned
)

// ClaimFor decides whether the controller named managedBy manages hc (helm-controller's
// shouldManage): charts with neither chart nor chartContent and charts annotated unmanaged
// are ignored; a managed-by annotation is honoured; without one the chart is claimed.
func ClaimFor(hc *HelmChart, managedBy string) Claim {
	if hc.Spec.Chart == "" && hc.Spec.ChartContent == "" {
		return ClaimIgnore
	}
	if _, ok := hc.Annotations[AnnotationUnmanaged]; ok {
		return ClaimIgnore
	}
	owner, ok := hc.Annotations[AnnotationManagedBy]
	switch {
	case !ok:
		return ClaimTake
	case owner == managedBy:
		return ClaimOwned
	default:
		return ClaimIgnore
	}
}

// TargetNamespace is where the release goes: spec.targetNamespace, or the HelmChart's own
// namespace (as helm-controller's code does, not the docs' "default").
func (hc *HelmChart) TargetNamespace() string {
	if hc.Spec.TargetNamespace != "" {
		return hc.Spec.TargetNamespace
	}
	return hc.Namespace
}

// HasFinalizer reports whether hc carries the uninstall finalizer.
func (hc *HelmChart) HasFinalizer() bool { return slices.Contains(hc.Finalizers, Finalizer) }

// UsedValuesSecret reports whether the values Secret ref of the chart named chart is read
// at all: one named chart-values-<chart> (K3s's own) or listing no keys is ignored.
func UsedValuesSecret(chart string, ref ValuesSecret) bool {
	return ref.Name != "" && ref.Name != ValuesSecretName(chart) && len(ref.Keys) > 0
}

// ValuesSecretName is the Secret K3s's helm-controller writes a chart's own values into,
// chart-values-<chart>; a values Secret reference to it is ignored.
func ValuesSecretName(chart string) string { return "chart-values-" + chart }
