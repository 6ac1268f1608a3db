package helm

import (
	"helm.sh/helm/v3/pkg/release"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// Keys of the helm.cattle.io API shared with K3s's helm-controller (package helmchart).
const (
	// AnnotationUnmanaged makes every helm controller ignore a HelmChart.
	AnnotationUnmanaged = helmchart.AnnotationUnmanaged
	// AnnotationManagedBy names the helm controller that claimed a HelmChart.
	AnnotationManagedBy = helmchart.AnnotationManagedBy
	// Finalizer guards the uninstall of a managed HelmChart's release.
	Finalizer = helmchart.Finalizer
	// DefaultManagedBy is K3s's helm controller name.
	DefaultManagedBy = helmchart.DefaultManagedBy
	// ConditionFailed is the HelmChart condition K3s's Failed column reads.
	ConditionFailed = helmchart.ConditionFailed
	// helmReleaseSecretType is the type of the Secrets Helm keeps release records in.
	helmReleaseSecretType = "helm.sh/release.v1"
)

// releaseAction is what to do with a chart's Helm release.
type releaseAction int

const (
	// actionNone: the release is deployed from the same chart and values.
	actionNone releaseAction = iota
	// actionInstall: there is no release.
	actionInstall
	// actionUpgrade: the release is deployed from something else, or failed with policy retry.
	actionUpgrade
	// actionReinstall: the release failed and the policy is reinstall (uninstall, install).
	actionReinstall
	// actionAbort: the release failed and the policy is abort: wait for an operator.
	actionAbort
)

// String names the action for logs.
func (a releaseAction) String() string {
	return [...]string{"none", "install", "upgrade", "reinstall", "abort"}[a]
}

// decideRelease chooses the Helm operation from the newest release (nil when there is
// none), the wanted configHash and the failure policy, following the state machine of K3s's
// job (klipper-helm's entry script): deployed → upgrade unless the hash matches;
// pending-upgrade/pending-rollback/superseded → upgrade (the caller first marks the release
// failed, as Helm refuses to upgrade a pending one); anything else (failed, pending-install,
// uninstalling, unknown) → the failure policy, reinstall by default.
func decideRelease(last *release.Release, hash, policy string) releaseAction {
	if last == nil || last.Info == nil {
		return actionInstall
	}
	switch last.Info.Status {
	case release.StatusDeployed:
		if last.Labels[helmchart.LabelConfigHash] == hash {
			return actionNone
		}
		return actionUpgrade
	case release.StatusPendingUpgrade, release.StatusPendingRollback, release.StatusSuperseded:
		return actionUpgrade
	}
	switch policy {
	case helmchart.FailurePolicyAbort:
		return actionAbort
	case helmchart.FailurePolicyRetry:
		return actionUpgrade
	default:
		return actionReinstall
	}
}
