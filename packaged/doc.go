// Package packaged deploys K3s's packaged components (CoreDNS, Traefik and the other
// manifests): it stages the embedded manifests into <data-dir>/server/manifests at every start,
// applies every file of that directory through its deploy (Addon) controller, and merges
// HelmChartConfig values into HelmCharts as K3s's helm controller does.
package packaged
