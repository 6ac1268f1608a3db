package helm

import (
	"context"

	"github.com/k3snet/k3snet/internal/crdinstall"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

// crdFieldManager owns the CRDs' fields in server-side apply.
const crdFieldManager = "k3snet-helm"

// installCRDs installs HelmChart and HelmChartConfig and waits until they are served, so the
// controller starts whether or not a deploy controller ran first.
func (c *Controller) installCRDs(ctx context.Context) error {
	defs, err := helmchart.CRDs()
	if err != nil {
		return err
	}
	_, err = crdinstall.Install(ctx, c.dyn, crdFieldManager, defs...)
	return err
}
