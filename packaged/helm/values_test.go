package helm

import (
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

func TestMergeValuesPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		layers  valuesLayers
		want    map[string]any
		wantErr bool
	}{
		{
			name: "nothing set gives empty values",
			want: map[string]any{},
		},
		{
			name: "each layer wins over every layer before it, in K3s's order",
			layers: valuesLayers{
				chartValuesContent:  "a: content\nb: content\nc: content\nd: content\ne: content\nf: content\ng: content\n",
				chartValues:         map[string]any{"b": "values", "c": "values", "d": "values", "e": "values", "f": "values", "g": "values"},
				chartSecrets:        []string{"c: secret1\nd: secret1\ne: secret1\nf: secret1\ng: secret1\n", "d: secret2\ne: secret2\nf: secret2\ng: secret2\n"},
				configValuesContent: "e: config-content\nf: config-content\ng: config-content\n",
				configValues:        map[string]any{"f": "config-values", "g": "config-values"},
				configSecrets:       []string{"g: config-secret\n"},
			},
			want: map[string]any{"a": "content", "b": "values", "c": "secret1", "d": "secret2", "e": "config-content", "f": "config-values", "g": "config-secret"},
		},
		{
			name: "set wins over a HelmChartConfig",
			layers: valuesLayers{
				configValuesContent: "image:\n  tag: from-config\n",
				set:                 map[string]intstr.IntOrString{"image.tag": intstr.FromString("from-set")},
			},
			want: map[string]any{"image": map[string]any{"tag": "from-set"}},
		},
		{
			name: "maps are deep-merged",
			layers: valuesLayers{
				chartValuesContent:  "ports:\n  web:\n    port: 8000\n    exposedPort: 80\n",
				configValuesContent: "ports:\n  web:\n    exposedPort: 8080\n  extra:\n    port: 9000\n",
			},
			want: map[string]any{"ports": map[string]any{
				"web":   map[string]any{"port": float64(8000), "exposedPort": float64(8080)},
				"extra": map[string]any{"port": float64(9000)},
			}},
		},
		{
			name: "lists are replaced, not merged",
			layers: valuesLayers{
				chartValuesContent:  "tolerations:\n- key: a\n- key: b\n",
				configValuesContent: "tolerations:\n- key: c\n",
			},
			want: map[string]any{"tolerations": []any{map[string]any{"key": "c"}}},
		},
		{
			name: "a scalar replaces a map and null is kept for Helm to delete the default",
			layers: valuesLayers{
				chartValuesContent:  "service:\n  annotations:\n    a: b\nlogs: {level: INFO}\n",
				configValuesContent: "service: disabled\nlogs: null\n",
			},
			want: map[string]any{"service": "disabled", "logs": nil},
		},
		{
			name: "set passes integers and true/false/null typed and everything else as a string",
			layers: valuesLayers{set: map[string]intstr.IntOrString{
				"replicas": intstr.FromInt32(2),
				"enabled":  intstr.FromString("TRUE"),
				"tag":      intstr.FromString("3"),
				"list":     intstr.FromString("a,b"),
				"empty":    intstr.FromString(""),
			}},
			want: map[string]any{"replicas": int64(2), "enabled": true, "tag": "3", "list": "a,b", "empty": ""},
		},
		{
			name:    "invalid valuesContent is an error",
			layers:  valuesLayers{chartValuesContent: "a: [\n"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeValues(tt.layers)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMergeValuesDoesNotModifyItsInputs(t *testing.T) {
	chartValues := map[string]any{"a": map[string]any{"b": "chart"}}
	configValues := map[string]any{"a": map[string]any{"c": "config"}}
	_, err := mergeValues(valuesLayers{chartValues: chartValues, configValues: configValues,
		set: map[string]intstr.IntOrString{"a.d": intstr.FromString("set")}})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": map[string]any{"b": "chart"}}, chartValues)
	require.Equal(t, map[string]any{"a": map[string]any{"c": "config"}}, configValues)
}

func TestMergedValuesSitAboveChartDefaults(t *testing.T) {
	// Helm coalesces the chart's defaults under the merged values when it renders (the lowest
	// layer); this checks the composition with Helm's own function.
	defaults := map[string]any{"deployment": map[string]any{"replicas": 1}, "logs": map[string]any{"level": "INFO"}, "keep": "x"}
	vals, err := mergeValues(valuesLayers{configValuesContent: "deployment:\n  replicas: 2\nlogs: null\n"})
	require.NoError(t, err)
	got := chartutil.CoalesceTables(vals, defaults)
	require.Equal(t, map[string]any{"deployment": map[string]any{"replicas": float64(2)}, "keep": "x"}, got)
}

func TestConfigHash(t *testing.T) {
	a, err := configHash("chart", map[string]any{"x": 1, "y": map[string]any{"z": 2}}, "ns")
	require.NoError(t, err)
	b, err := configHash("chart", map[string]any{"y": map[string]any{"z": 2}, "x": 1}, "ns")
	require.NoError(t, err)
	require.Equal(t, a, b, "the hash does not depend on map order")
	require.Len(t, a, 63, "fits a label value")
	for _, other := range []struct{ chart, ns string }{{"chart2", "ns"}, {"chart", "ns2"}} {
		c, err := configHash(other.chart, map[string]any{"x": 1, "y": map[string]any{"z": 2}}, other.ns)
		require.NoError(t, err)
		require.NotEqual(t, a, c)
	}
}

func makeRelease(status release.Status, hash string) *release.Release {
	return &release.Release{Info: &release.Info{Status: status}, Labels: map[string]string{helmchart.LabelConfigHash: hash}}
}

func TestDecideRelease(t *testing.T) {
	tests := []struct {
		name   string
		last   *release.Release
		policy string
		want   releaseAction
	}{
		{"no release is installed", nil, "", actionInstall},
		{"a deployed release with the same hash is left alone", makeRelease(release.StatusDeployed, "h"), "", actionNone},
		{"a deployed release with another hash is upgraded", makeRelease(release.StatusDeployed, "old"), "", actionUpgrade},
		{"an interrupted upgrade is upgraded again", makeRelease(release.StatusPendingUpgrade, "h"), helmchart.FailurePolicyAbort, actionUpgrade},
		{"a failed release is reinstalled by default", makeRelease(release.StatusFailed, "h"), "", actionReinstall},
		{"a failed release is reinstalled with policy reinstall", makeRelease(release.StatusFailed, "h"), helmchart.FailurePolicyReinstall, actionReinstall},
		{"a failed release is upgraded with policy retry", makeRelease(release.StatusFailed, "h"), helmchart.FailurePolicyRetry, actionUpgrade},
		{"a failed release waits with policy abort", makeRelease(release.StatusFailed, "h"), helmchart.FailurePolicyAbort, actionAbort},
		{"an interrupted install follows the policy", makeRelease(release.StatusPendingInstall, "h"), "", actionReinstall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, decideRelease(tt.last, "h", tt.policy))
		})
	}
}
