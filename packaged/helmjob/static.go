package helmjob

import (
	"encoding/base64"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// maxStaticChartBytes bounds a static chart: its job gets it base64-encoded (4/3 larger) in
// the content ConfigMap, and the API server stores at most 1 MiB in one.
const maxStaticChartBytes = 700 << 10

// withStaticContent returns hc with the chart it names in the static directory, https://
// %{KUBERNETES_API}%/static/<path>, as its chartContent; a chart that names no static file,
// or has chartContent already, is returned as it is. K3s's job downloads such a chart from
// the K3s server, which serves <data-dir>/server/static at /static/ on the API server's port.
// k3snet's servers have no listener of their own in front of the API server, so the job gets
// the same archive through the content ConfigMap, as an inline chart's. The file is read at
// every sync of the chart; when it changed, so does the config hash, and the job runs again.
func withStaticContent(hc *helmchart.HelmChart, staticDir string) (*helmchart.HelmChart, error) {
	path, ok := helmchart.StaticPath(hc.Spec.Chart)
	if !ok || hc.Spec.ChartContent != "" {
		return hc, nil
	}
	data, err := helmchart.ReadStatic(staticDir, path, maxStaticChartBytes)
	if err != nil {
		return nil, err
	}
	chart := *hc
	chart.Spec.ChartContent = base64.StdEncoding.EncodeToString(data)
	return &chart, nil
}
