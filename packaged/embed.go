package packaged

import "embed"

// The embedded sources are read-only (embed.FS has no writer), so these package variables
// hold no mutable state.
var (
	// manifestsFS holds the packaged manifests Stage writes, at their relative
	// paths under manifests/.
	//
	//go:embed manifests
	manifestsFS embed.FS

	// chartsFS holds the sources of k3snet's own charts; Stage packs each directory into a
	// .tgz and inlines it as a HelmChart's chartContent.
	//
	//go:embed all:charts
	chartsFS embed.FS

	// crdsFS holds the CustomResourceDefinition the deploy controller reads (Addon); Start installs
	// it with package helm's.
	//
	//go:embed crds
	crdsFS embed.FS
)
