// Package helmjob runs K3s's HelmCharts the way K3s's helm-controller does: each chart's
// install, upgrade or uninstall happens in a Job (helm-install-<chart>, helm-delete-<chart>)
// on the klipper-helm image, whose pod reads the chart and its values from a Secret and a
// ConfigMap the controller writes. The process that runs the controller links no Helm, so it
// stays small; the Helm work and its memory live in the job's pod for as long as it runs.
//
// This file set holds the pure part: the names of a chart's objects, the Job (its pod,
// environment, arguments and volumes, K3s's contract with klipper-helm), the values Secret
// and the content ConfigMap, and the config hash that says when a Job must be replaced.
package helmjob
