package packaged

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/k3snet/k3snet/internal/crdinstall"
	"github.com/k3snet/k3snet/packaged/helmchart"
)

const (
	// crdGroup and crdKind identify CustomResourceDefinitions among a file's objects.
	crdGroup = "apiextensions.k8s.io"
	crdKind  = "CustomResourceDefinition"
)

// isCRD reports whether obj is a CustomResourceDefinition.
func isCRD(obj *unstructured.Unstructured) bool {
	gvk := obj.GroupVersionKind()
	return gvk.Group == crdGroup && gvk.Kind == crdKind
}

// installCRDs installs the CRD the deploy controller reads (Addon) and those of the kinds K3s's
// manifests hold (HelmChart, HelmChartConfig, from package helm, which installs them too), and
// waits until they are served.
func (a *applier) installCRDs(ctx context.Context) error {
	defs, err := crdinstall.ReadDir(crdsFS, "crds")
	if err != nil {
		return err
	}
	helmCRDs, err := helmchart.CRDs()
	if err != nil {
		return err
	}
	if _, err := crdinstall.Install(ctx, a.dyn, fieldManager, append(defs, helmCRDs...)...); err != nil {
		return err
	}
	a.mapper.Reset()
	return nil
}

// waitEstablished waits until every CRD of names is served, then resets the RESTMapper so
// that their kinds resolve (K3s #5081).
func (a *applier) waitEstablished(ctx context.Context, names []string) error {
	if err := crdinstall.WaitEstablished(ctx, a.dyn, names); err != nil {
		return err
	}
	a.mapper.Reset()
	return nil
}
