// Package helmchart is K3s's helm.cattle.io/v1 API, HelmChart and HelmChartConfig, and the
// rules about it that need no Helm: the keys K3s's helm-controller writes (managed-by,
// unmanaged, the finalizer, the configHash label), which controller manages a chart, and
// where its release goes. Both ways k3snet runs Helm read it: package helm, which runs the
// Helm SDK in-process, and package helmjob, which runs it in K3s's helm-install Jobs and so
// links no Helm at all.
package helmchart
