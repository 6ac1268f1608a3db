package helm

import (
	"fmt"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// RenderInline renders the inline chart (spec.chartContent) of a HelmChart object with its
// own values (valuesContent, values, set; no HelmChartConfig), as a first install would, and
// returns the rendered files by name. A HelmChart whose chart is not inline renders nothing:
// that chart is fetched at install time.
func RenderInline(obj *unstructured.Unstructured) (map[string]string, error) {
	hc := &helmchart.HelmChart{}
	if err := helmchart.Decode(obj, hc); err != nil {
		return nil, err
	}
	if hc.Spec.ChartContent == "" {
		return nil, nil
	}
	ch, err := loadChart(hc.Spec.ChartContent)
	if err != nil {
		return nil, fmt.Errorf("HelmChart %s: %w", hc.Name, err)
	}
	vals, err := mergeValues(valuesLayers{chartValuesContent: hc.Spec.ValuesContent, chartValues: hc.Spec.Values, set: hc.Spec.Set})
	if err != nil {
		return nil, fmt.Errorf("HelmChart %s: %w", hc.Name, err)
	}
	opts := chartutil.ReleaseOptions{Name: hc.Name, Namespace: hc.TargetNamespace(), Revision: 1, IsInstall: true}
	renderVals, err := chartutil.ToRenderValues(ch, vals, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("HelmChart %s: building render values: %w", hc.Name, err)
	}
	rendered, err := engine.Render(ch, renderVals)
	if err != nil {
		return nil, fmt.Errorf("HelmChart %s: rendering chart: %w", hc.Name, err)
	}
	return rendered, nil
}
