package helm

import (
	"context"
	"embed"

	"github.com/k3snet/k3snet/internal/crdinstall"
)

// crdsFS holds the CRDs the Helm controller reads: HelmChart and HelmChartConfig
// (helm.cattle.io/v1, K3s's definitions).
//
//go:embed crds
var crdsFS embed.FS

// crdFieldManager owns the CRDs' fields in server-side apply.
const crdFieldManager = "k3snet-helm"

// CRDs returns the definitions of HelmChart and HelmChartConfig, for a controller that
// applies HelmCharts (the deploy controller) to install before it applies them.
func CRDs() ([][]byte, error) { return crdinstall.ReadDir(crdsFS, "crds") }

// installCRDs installs HelmChart and HelmChartConfig and waits until they are served, so the
// controller starts whether or not a deploy controller ran first.
func (c *Controller) installCRDs(ctx context.Context) error {
	defs, err := CRDs()
	if err != nil {
		return err
	}
	_, err = crdinstall.Install(ctx, c.dyn, crdFieldManager, defs...)
	return err
}
