package helmjob

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// Keys of a chart's values Secret (chart-values-<chart>), K3s's, and the Secret's type.
const (
	KeyChartValuesContent  = "HelmChartValuesContent"
	KeyChartValues         = "HelmChartValues"
	KeyConfigValuesContent = "HelmChartConfigValuesContent"
	KeyConfigValues        = "HelmChartConfigValues"
	KeyRepoCA              = "RepoCA"
	ValuesSecretType       = corev1.SecretType("helmcharts.helm.cattle.io/values")

	// repoCAFile is where the job finds spec.repoCA, beside the values files.
	repoCAFile = "ca-file.pem"
	// lastValuesFile bounds the values Secret files of one layer (chart or config): their
	// names number them with three digits from 002 (000 and 001 are the inline values).
	lastValuesFile = 999
)

// ValuesData is the data of a chart's values Secret: the inline values of the chart and of
// its config (nil when there is none) and the repository CA, each only when non-empty.
// Structured values are written as YAML with sorted keys, so equal values give equal data.
func ValuesData(hc *helmchart.HelmChart, cfg *helmchart.HelmChartConfig) (map[string][]byte, error) {
	data := map[string][]byte{}
	put := func(key, content string) {
		if content != "" {
			data[key] = []byte(content)
		}
	}
	putValues := func(key string, values map[string]any) error {
		if len(values) == 0 {
			return nil
		}
		doc, err := yaml.Marshal(values)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", key, err)
		}
		data[key] = doc
		return nil
	}
	put(KeyChartValuesContent, hc.Spec.ValuesContent)
	if err := putValues(KeyChartValues, hc.Spec.Values); err != nil {
		return nil, err
	}
	put(KeyRepoCA, hc.Spec.RepoCA)
	if cfg != nil {
		put(KeyConfigValuesContent, cfg.Spec.ValuesContent)
		if err := putValues(KeyConfigValues, cfg.Spec.Values); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// valuesProjection is the job's /config volume: the values Secret's files, then the chart's
// and the config's values Secrets, one file per key. klipper-helm passes every
// /config/*.yaml to Helm in name order, so the names set the precedence K3s documents:
// chart valuesContent, chart values, chart values Secrets in list order, then the same three
// of the HelmChartConfig. `set` is not a file: it is the job's arguments, and wins over all.
// A values Secret marked ignoreUpdates is optional, as in K3s: the job runs without it.
func valuesProjection(hc *helmchart.HelmChart, cfg *helmchart.HelmChartConfig, data map[string][]byte) ([]corev1.VolumeProjection, error) {
	own := &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: ValuesSecretName(hc.Name)}}
	for _, f := range []struct{ key, file string }{
		{KeyChartValuesContent, "values-0-000-HelmChart-ValuesContent.yaml"},
		{KeyChartValues, "values-0-001-HelmChart-Values.yaml"},
		{KeyConfigValuesContent, "values-1-000-HelmChartConfig-ValuesContent.yaml"},
		{KeyConfigValues, "values-1-001-HelmChartConfig-Values.yaml"},
		{KeyRepoCA, repoCAFile},
	} {
		if _, ok := data[f.key]; ok {
			own.Items = append(own.Items, corev1.KeyToPath{Key: f.key, Path: f.file})
		}
	}
	sources := []corev1.VolumeProjection{{Secret: own}}
	chartFiles, err := secretFiles(hc.Name, 0, "HelmChart", hc.Spec.ValuesSecrets)
	if err != nil {
		return nil, err
	}
	sources = append(sources, chartFiles...)
	if cfg != nil {
		configFiles, err := secretFiles(hc.Name, 1, "HelmChartConfig", cfg.Spec.ValuesSecrets)
		if err != nil {
			return nil, err
		}
		sources = append(sources, configFiles...)
	}
	return sources, nil
}

// secretFiles projects the used values Secrets of one layer, numbering their keys from 002.
func secretFiles(chart string, layer int, kind string, refs []helmchart.ValuesSecret) ([]corev1.VolumeProjection, error) {
	var sources []corev1.VolumeProjection
	n := 2
	for _, ref := range refs {
		if !helmchart.UsedValuesSecret(chart, ref) {
			continue
		}
		p := &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}}
		if ref.IgnoreUpdates {
			p.Optional = ptr.To(true)
		}
		for _, key := range ref.Keys {
			if n > lastValuesFile {
				return nil, fmt.Errorf("the %s's valuesSecrets list more than %d keys", kind, lastValuesFile-1)
			}
			p.Items = append(p.Items, corev1.KeyToPath{Key: key, Path: fmt.Sprintf("values-%d-%03d-%s-ValuesSecret.yaml", layer, n, kind)})
			n++
		}
		sources = append(sources, corev1.VolumeProjection{Secret: p})
	}
	return sources, nil
}
