package helm

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

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
func CRDs() ([][]byte, error) {
	entries, err := fs.ReadDir(crdsFS, "crds")
	if err != nil {
		return nil, fmt.Errorf("listing embedded CRDs: %w", err)
	}
	var defs [][]byte
	for _, e := range entries {
		data, err := fs.ReadFile(crdsFS, "crds/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading embedded CRD %s: %w", e.Name(), err)
		}
		defs = append(defs, data)
	}
	return defs, nil
}

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
