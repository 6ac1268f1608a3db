package helmchart

import (
	"embed"

	"github.com/k3snet/k3snet/internal/crdinstall"
)

// crdsFS holds K3s's definitions of HelmChart and HelmChartConfig (helm.cattle.io/v1).
//
//go:embed crds
var crdsFS embed.FS

// CRDs returns the definitions of HelmChart and HelmChartConfig, for whatever applies
// HelmCharts (the deploy controller) or reconciles them (a helm controller) to install first.
func CRDs() ([][]byte, error) { return crdinstall.ReadDir(crdsFS, "crds") }
