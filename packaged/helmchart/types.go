package helmchart

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// HelmChart is a helm.cattle.io/v1 HelmChart, with every field of K3s's CRD.
type HelmChart struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              HelmChartSpec   `json:"spec"`
	Status            HelmChartStatus `json:"status,omitempty"`
}

// HelmChartSpec is what to install and how. The job fields (Bootstrap, JobImage,
// BackOffLimit, PodSecurityContext, SecurityContext) shape K3s's helm job and mean nothing
// to an in-process install.
type HelmChartSpec struct {
	TargetNamespace       string                        `json:"targetNamespace,omitempty"`
	CreateNamespace       bool                          `json:"createNamespace,omitempty"`
	Chart                 string                        `json:"chart,omitempty"`
	Version               string                        `json:"version,omitempty"`
	Repo                  string                        `json:"repo,omitempty"`
	RepoCA                string                        `json:"repoCA,omitempty"`
	RepoCAConfigMap       *corev1.LocalObjectReference  `json:"repoCAConfigMap,omitempty"`
	Set                   map[string]intstr.IntOrString `json:"set,omitempty"`
	Values                map[string]any                `json:"values,omitempty"`
	ValuesContent         string                        `json:"valuesContent,omitempty"`
	ValuesSecrets         []ValuesSecret                `json:"valuesSecrets,omitempty"`
	HelmVersion           string                        `json:"helmVersion,omitempty"`
	Bootstrap             bool                          `json:"bootstrap,omitempty"`
	TakeOwnership         bool                          `json:"takeOwnership,omitempty"`
	ServerSide            string                        `json:"serverSide,omitempty"`
	ForceConflicts        *bool                         `json:"forceConflicts,omitempty"`
	ChartContent          string                        `json:"chartContent,omitempty"`
	JobImage              string                        `json:"jobImage,omitempty"`
	BackOffLimit          *int32                        `json:"backOffLimit,omitempty"`
	Timeout               *metav1.Duration              `json:"timeout,omitempty"`
	FailurePolicy         string                        `json:"failurePolicy,omitempty"`
	AuthSecret            *corev1.LocalObjectReference  `json:"authSecret,omitempty"`
	AuthPassCredentials   bool                          `json:"authPassCredentials,omitempty"`
	InsecureSkipTLSVerify bool                          `json:"insecureSkipTLSVerify,omitempty"`
	PlainHTTP             bool                          `json:"plainHTTP,omitempty"`
	DockerRegistrySecret  *corev1.LocalObjectReference  `json:"dockerRegistrySecret,omitempty"`
	PodSecurityContext    *corev1.PodSecurityContext    `json:"podSecurityContext,omitempty"`
	SecurityContext       *corev1.SecurityContext       `json:"securityContext,omitempty"`
	Driver                string                        `json:"driver,omitempty"`
}

// HelmChartStatus is what K3s's helm-controller reports.
type HelmChartStatus struct {
	JobName    string               `json:"jobName,omitempty"`
	Conditions []HelmChartCondition `json:"conditions,omitempty"`
}

// HelmChartCondition is one entry of status.conditions (Failed, JobCreated).
type HelmChartCondition struct {
	Type    string                 `json:"type"`
	Status  corev1.ConditionStatus `json:"status,omitempty"`
	Reason  string                 `json:"reason,omitempty"`
	Message string                 `json:"message,omitempty"`
}

// HelmChartConfig is a helm.cattle.io/v1 HelmChartConfig: values (and a failure policy)
// for the HelmChart of the same namespace and name.
type HelmChartConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              HelmChartConfigSpec `json:"spec"`
}

// HelmChartConfigSpec holds a HelmChartConfig's fields; each non-empty one overrides or
// (values) is merged over the chart's.
type HelmChartConfigSpec struct {
	Values         map[string]any `json:"values,omitempty"`
	ValuesContent  string         `json:"valuesContent,omitempty"`
	ValuesSecrets  []ValuesSecret `json:"valuesSecrets,omitempty"`
	FailurePolicy  string         `json:"failurePolicy,omitempty"`
	ServerSide     string         `json:"serverSide,omitempty"`
	ForceConflicts *bool          `json:"forceConflicts,omitempty"`
}

// ValuesSecret references keys of a Secret whose contents are values documents.
type ValuesSecret struct {
	Name          string   `json:"name"`
	Keys          []string `json:"keys,omitempty"`
	IgnoreUpdates bool     `json:"ignoreUpdates,omitempty"`
}

// Decode converts an unstructured HelmChart or HelmChartConfig (an informer's object) into
// one of the types above through JSON, so IntOrString, Duration and the security contexts
// use their own decoders. The error names the object.
func Decode(u *unstructured.Unstructured, into any) error {
	data, err := u.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decoding %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}
