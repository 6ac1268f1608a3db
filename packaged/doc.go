// Package packaged deploys K3s's packaged components (CoreDNS, Traefik and any user
// manifest) the way a K3s server does (spec A of packaged-clustercidr.md):
//
//   - Stage writes k3snet's own embedded manifests (coredns.yaml, traefik.yaml) into
//     <data-dir>/server/manifests at every start, with the template variables of spec A.3
//     substituted and the skip rules of spec A.2 applied. traefik.yaml carries two
//     helm.cattle.io/v1 HelmCharts whose charts (k3snet's own small Traefik and Traefik CRD
//     charts) travel inline as chartContent, packed deterministically from the sources under
//     charts/. TraefikV1Installed tells the caller to leave an existing Traefik v1 alone
//     (spec A.11).
//
//   - Controller is the deploy (Addon) controller of spec A.6: it applies every
//     .yaml/.yml/.json file of the directory with server-side apply, one k3s.cattle.io/v1
//     Addon per file, CRDs first, prunes objects that leave a file, uninstalls disabled files,
//     and isolates failing files with Warning Events. It writes K3s's owner label and
//     annotations, so objects move between K3s and k3snet without orphans. It also keeps
//     NodeHosts in ConfigMap kube-system/coredns while CoreDNS is enabled (spec A.4), and
//     installs the Addon, HelmChart and HelmChartConfig CRDs.
//
//   - HelmController is the helm controller of spec A.8–A.10, run in-process with the Helm
//     SDK instead of K3s's per-chart Jobs: it claims HelmCharts as K3s does (managed-by and
//     unmanaged annotations), merges HelmChart and HelmChartConfig values with K3s's exact
//     precedence, installs or upgrades the release when the chart or the merged values
//     change (a hash on the release, as K3s's configHash label), applies the failure policy
//     to failed releases, and uninstalls behind K3s's finalizer when the HelmChart goes.
//     Release records are Helm's own (Secrets by default), so `helm list` shows them.
//     Charts come inline (chartContent), from an http(s) URL, from a repository's index
//     (repo, version) or from an OCI registry, with K3s's repoCA, repoCAConfigMap,
//     authSecret, authPassCredentials, insecureSkipTLSVerify, plainHTTP and
//     dockerRegistrySecret; downloads are cached, and an unreachable source is a Failed
//     condition and a Warning Event, retried with backoff. A change to a values Secret
//     (unless ignoreUpdates) or to an authSecret re-syncs the charts that read it. Start it
//     after Controller.Start, which installs its CRDs.
package packaged
