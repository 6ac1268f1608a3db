package helmjob

import "github.com/k3snet/k3snet/packaged/helmchart"

// The names of a chart's objects, K3s's, so `kubectl logs job/helm-install-traefik -n
// kube-system` works as K3s's docs say.

// InstallJobName is the Job that installs or upgrades chart's release.
func InstallJobName(chart string) string { return "helm-install-" + chart }

// DeleteJobName is the Job that uninstalls a deleted chart's release.
func DeleteJobName(chart string) string { return "helm-delete-" + chart }

// ServiceAccountName is the identity the chart's jobs run as.
func ServiceAccountName(chart string) string { return "helm-" + chart }

// ClusterRoleBindingName binds the chart's service account to the job ClusterRole; the
// namespace is in it because ClusterRoleBindings are cluster-wide.
func ClusterRoleBindingName(namespace, chart string) string {
	return "helm-" + namespace + "-" + chart
}

// ValuesSecretName holds the chart's values files and repository CA.
func ValuesSecretName(chart string) string { return helmchart.ValuesSecretName(chart) }

// ContentConfigMapName holds an inline chart (spec.chartContent).
func ContentConfigMapName(chart string) string { return "chart-content-" + chart }

// ContentKey is the ConfigMap key of an inline chart, the file klipper-helm decodes.
func ContentKey(chart string) string { return chart + ".tgz.base64" }
