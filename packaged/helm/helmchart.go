package helm

import (
	"encoding/json"
	"fmt"
	"slices"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Keys of the helm.cattle.io API shared with K3s's helm-controller, so a
// HelmChart moves between K3s and k3snet without orphans.
const (
	// AnnotationUnmanaged makes every helm controller ignore a HelmChart.
	AnnotationUnmanaged = "helmcharts.helm.cattle.io/unmanaged"
	// AnnotationManagedBy names the helm controller that claimed a HelmChart (note the
	// domain: helmcharts.cattle.io, not helmcharts.helm.cattle.io, as in K3s).
	AnnotationManagedBy = "helmcharts.cattle.io/managed-by"
	// Finalizer guards the uninstall of a managed HelmChart's release.
	Finalizer = "wrangler.cattle.io/on-helm-chart-remove"
	// labelConfigHash on a release records the configHash it was installed from.
	labelConfigHash = "helmcharts.helm.cattle.io/configHash"
	// DefaultManagedBy is K3s's helm controller name.
	DefaultManagedBy = "helm-controller"
	// ConditionFailed is the HelmChart condition K3s's Failed column reads.
	ConditionFailed = "Failed"
	// helmReleaseSecretType is the type of the Secrets Helm keeps release records in.
	helmReleaseSecretType = "helm.sh/release.v1"
	// secretRefIndex indexes HelmCharts and HelmChartConfigs by the Secrets they read.
	secretRefIndex = "secretRef"

	failurePolicyAbort     = "abort"
	failurePolicyReinstall = "reinstall"
	failurePolicyRetry     = "retry"
)

// helmChart is the part of a helm.cattle.io/v1 HelmChart the controller reads.
type helmChart struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              helmChartSpec `json:"spec"`
}

// helmChartSpec holds the HelmChart fields an in-process install uses. Job fields (jobImage,
// backOffLimit, security contexts, bootstrap) have no meaning without a job.
type helmChartSpec struct {
	TargetNamespace       string                        `json:"targetNamespace,omitempty"`
	CreateNamespace       bool                          `json:"createNamespace,omitempty"`
	Chart                 string                        `json:"chart,omitempty"`
	Version               string                        `json:"version,omitempty"`
	Repo                  string                        `json:"repo,omitempty"`
	RepoCA                string                        `json:"repoCA,omitempty"`
	RepoCAConfigMap       *corev1.LocalObjectReference  `json:"repoCAConfigMap,omitempty"`
	AuthSecret            *corev1.LocalObjectReference  `json:"authSecret,omitempty"`
	AuthPassCredentials   bool                          `json:"authPassCredentials,omitempty"`
	InsecureSkipTLSVerify bool                          `json:"insecureSkipTLSVerify,omitempty"`
	PlainHTTP             bool                          `json:"plainHTTP,omitempty"`
	DockerRegistrySecret  *corev1.LocalObjectReference  `json:"dockerRegistrySecret,omitempty"`
	Set                   map[string]intstr.IntOrString `json:"set,omitempty"`
	Values                map[string]any                `json:"values,omitempty"`
	ValuesContent         string                        `json:"valuesContent,omitempty"`
	ValuesSecrets         []valuesSecret                `json:"valuesSecrets,omitempty"`
	HelmVersion           string                        `json:"helmVersion,omitempty"`
	TakeOwnership         bool                          `json:"takeOwnership,omitempty"`
	ChartContent          string                        `json:"chartContent,omitempty"`
	Timeout               *metav1.Duration              `json:"timeout,omitempty"`
	FailurePolicy         string                        `json:"failurePolicy,omitempty"`
	Driver                string                        `json:"driver,omitempty"`
}

// helmChartConfig is the part of a helm.cattle.io/v1 HelmChartConfig the controller reads.
type helmChartConfig struct {
	Spec struct {
		Values        map[string]any `json:"values,omitempty"`
		ValuesContent string         `json:"valuesContent,omitempty"`
		ValuesSecrets []valuesSecret `json:"valuesSecrets,omitempty"`
		FailurePolicy string         `json:"failurePolicy,omitempty"`
	} `json:"spec"`
}

// valuesSecret references keys of a Secret whose contents are values documents.
type valuesSecret struct {
	Name          string   `json:"name"`
	Keys          []string `json:"keys,omitempty"`
	IgnoreUpdates bool     `json:"ignoreUpdates,omitempty"`
}

// chartSecretRefs is the secretRefIndex function of HelmCharts: the "<namespace>/<name>"
// of each Secret whose change re-syncs the chart (secretRefKeys). An index function must
// not fail (the indexer panics), and a chart that cannot be decoded reads no Secret.
func chartSecretRefs(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	hc := &helmChart{}
	if err := decodeObject(u, hc); err != nil {
		return nil, nil
	}
	return secretRefKeys(hc.Namespace, hc.Name, hc.Spec.ValuesSecrets,
		refName(hc.Spec.AuthSecret), refName(hc.Spec.DockerRegistrySecret)), nil
}

// configSecretRefs is the secretRefIndex function of HelmChartConfigs: the values Secrets
// of a config re-sync the chart of the same name.
func configSecretRefs(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	cfg := &helmChartConfig{}
	if err := decodeObject(u, cfg); err != nil {
		return nil, nil
	}
	return secretRefKeys(u.GetNamespace(), u.GetName(), cfg.Spec.ValuesSecrets), nil
}

// decodeObject converts an unstructured object into one of the structs above through JSON,
// so IntOrString and Duration use their own decoders.
func decodeObject(u *unstructured.Unstructured, into any) error {
	data, err := u.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decoding %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// targetNamespace is where the release goes: spec.targetNamespace, or the HelmChart's own
// namespace (as helm-controller's code does, not the docs' "default").
func (hc *helmChart) targetNamespace() string {
	if hc.Spec.TargetNamespace != "" {
		return hc.Spec.TargetNamespace
	}
	return hc.Namespace
}

// claim is what the controller does with a HelmChart before anything else.
type claim int

const (
	// claimIgnore: not ours (no chart, unmanaged, or managed by another controller).
	claimIgnore claim = iota
	// claimTake: nobody claimed it yet; write the managed-by annotation first.
	claimTake
	// claimOwned: ours to reconcile.
	claimOwned
)

// claimFor decides whether the controller named managedBy manages hc (helm-controller's
// shouldManage): charts with neither chart nor chartContent and charts annotated unmanaged
// are ignored; a managed-by annotation is honoured; without one the chart is claimed.
func claimFor(hc *helmChart, managedBy string) claim {
	if hc.Spec.Chart == "" && hc.Spec.ChartContent == "" {
		return claimIgnore
	}
	if _, ok := hc.Annotations[AnnotationUnmanaged]; ok {
		return claimIgnore
	}
	owner, ok := hc.Annotations[AnnotationManagedBy]
	switch {
	case !ok:
		return claimTake
	case owner == managedBy:
		return claimOwned
	default:
		return claimIgnore
	}
}

// hasFinalizer reports whether hc carries the uninstall finalizer.
func (hc *helmChart) hasFinalizer() bool { return slices.Contains(hc.Finalizers, Finalizer) }

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
		if last.Labels[labelConfigHash] == hash {
			return actionNone
		}
		return actionUpgrade
	case release.StatusPendingUpgrade, release.StatusPendingRollback, release.StatusSuperseded:
		return actionUpgrade
	}
	switch policy {
	case failurePolicyAbort:
		return actionAbort
	case failurePolicyRetry:
		return actionUpgrade
	default:
		return actionReinstall
	}
}
