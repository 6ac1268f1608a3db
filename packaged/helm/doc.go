// Package helm is K3s's helm-controller (HelmChart, HelmChartConfig, values), run in-process
// with the Helm SDK instead of K3s's per-chart Jobs: it claims HelmCharts as K3s does (managed-by and
// unmanaged annotations), merges HelmChart and HelmChartConfig values with K3s's exact
// precedence, installs or upgrades the release when the chart or the merged values
// change (a hash on the release, as K3s's configHash label), applies the failure policy
// to failed releases, and uninstalls behind K3s's finalizer when the HelmChart goes.
// Release records are Helm's own (Secrets by default), so `helm list` shows them.
// Charts come inline (chartContent), from an http(s) URL, from a repository's index
// (repo, version) or from an OCI registry, with K3s's repoCA, repoCAConfigMap,
// authSecret, authPassCredentials, insecureSkipTLSVerify, plainHTTP and
// dockerRegistrySecret; archives that load as charts are cached (64 MiB in all),
// credentials written into chart or repo URLs are masked in status, Events and logs
// (Helm's own errors included), and an unreachable source is a Failed
// condition and a Warning Event, retried with backoff. A change to a values Secret
// (unless ignoreUpdates) or to an authSecret re-syncs the charts that read it. Start
// installs the HelmChart and HelmChartConfig CRDs first; package packaged's deploy controller
// installs them too, so either may start first.
package helm
