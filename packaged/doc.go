// Package packaged deploys K3s's packaged components (CoreDNS, Traefik and any user
// manifest) the way a K3s server does (its deploy controller and helm-controller):
//
//   - Stage writes k3snet's own embedded manifests (coredns.yaml, traefik.yaml) into
//     <data-dir>/server/manifests at every start, with K3s's template variables (%{...}%)
//     substituted and K3s's skip rules (disabled and .skip files) applied. traefik.yaml carries two
//     helm.cattle.io/v1 HelmCharts whose charts (k3snet's own small Traefik and Traefik CRD
//     charts) travel inline as chartContent, packed deterministically from the sources under
//     charts/. TraefikV1Installed tells the caller to leave an existing Traefik v1 alone, as
//     K3s does.
//
//   - Controller is the deploy (Addon) controller of K3s: it applies every
//     .yaml/.yml/.json file of the directory with server-side apply, one k3s.cattle.io/v1
//     Addon per file, CRDs first, prunes objects that leave a file, uninstalls disabled files,
//     and isolates failing files with Warning Events. It writes K3s's owner label and
//     annotations, so objects move between K3s and k3snet without orphans. It also keeps
//     NodeHosts in ConfigMap kube-system/coredns while CoreDNS is enabled, and
//     installs the Addon, HelmChart and HelmChartConfig CRDs.
//
//     Addon names: a top-level file keeps K3s's name, its basename up to the first dot
//     (traefik.yaml is "traefik"), so Addons and objects K3s created are adopted. A file in a
//     folder is named by its path without the last extension, folders joined by dots
//     (a/config.yaml is "a.config"), where K3s uses the basename alone and two folders'
//     config.yaml prune each other's objects (K3s #9500). Two files that still map to one
//     name (foo.yaml and foo.custom.yaml, foo.yaml and foo.json) are not shared: the file the
//     Addon's spec.source names, else the first in path order, keeps it, and the other is
//     neither applied nor disabled, with an AddonNameConflict Warning on the Addon.
//
//     Files read: regular files only, at most 32 MiB each. Symbolic links to regular files
//     are followed, as K3s follows them (NixOS links every manifest into its store); a file
//     that is, or links to, a named pipe, a device, a socket or a directory, or one over the
//     limit, gets a ReadManifestFailed Warning and is not applied.
//
//     NodeHosts lists only InternalIPs that parse as IP addresses (written in canonical
//     form, no zone) of nodes whose names are DNS names: a node writes its own status, and
//     CoreDNS answers every name of a hosts line for the whole cluster. A node with anything
//     else is left out, with a NodeHostsSkipped Warning on the Node.
//
//   - Package packaged/helm is K3s's helm-controller (HelmChart, HelmChartConfig, values), run
//     in-process with the Helm SDK; Start it after, or beside, this package's controller.
package packaged
