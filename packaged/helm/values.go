package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// valuesLayers are the user-supplied values of one HelmChart, lowest precedence first
// (K3s's precedence). The chart's own defaults sit below all of them; Helm coalesces those itself
// when it renders, exactly as when K3s's job passes the layers as --values files.
type valuesLayers struct {
	// chartValuesContent is HelmChart spec.valuesContent (values-0-000).
	chartValuesContent string
	// chartValues is HelmChart spec.values (values-0-001).
	chartValues map[string]any
	// chartSecrets are the documents of HelmChart spec.valuesSecrets, secrets and keys in
	// list order (values-0-002 upward).
	chartSecrets []string
	// configValuesContent is HelmChartConfig spec.valuesContent (values-1-000).
	configValuesContent string
	// configValues is HelmChartConfig spec.values (values-1-001).
	configValues map[string]any
	// configSecrets are the documents of HelmChartConfig spec.valuesSecrets (values-1-002 up).
	configSecrets []string
	// set is HelmChart spec.set; it wins over every values file (--set / --set-string).
	set map[string]intstr.IntOrString
}

// mergeValues merges the layers with K3s's precedence: each layer is deep-merged
// over the previous one as Helm merges --values files left to right (maps merged key by key,
// any other value, lists included, replaced wholesale), then spec.set is applied on top in
// sorted key order. Inputs are not modified.
func mergeValues(l valuesLayers) (map[string]any, error) {
	docs := []valuesDoc{{name: "HelmChart valuesContent", text: l.chartValuesContent}, {name: "HelmChart values", m: l.chartValues}}
	for i, s := range l.chartSecrets {
		docs = append(docs, valuesDoc{name: fmt.Sprintf("HelmChart values secret %d", i), text: s})
	}
	docs = append(docs, valuesDoc{name: "HelmChartConfig valuesContent", text: l.configValuesContent}, valuesDoc{name: "HelmChartConfig values", m: l.configValues})
	for i, s := range l.configSecrets {
		docs = append(docs, valuesDoc{name: fmt.Sprintf("HelmChartConfig values secret %d", i), text: s})
	}
	keys := make([]string, 0, len(l.set))
	for k := range l.set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	set := make([]helmchart.SetArg, len(keys))
	for i, k := range keys {
		set[i] = helmchart.SetArgFor(k, l.set[k])
	}
	return mergeDocs(docs, set)
}

// valuesDoc is one values layer: a YAML document (text) or structured values (m).
type valuesDoc struct {
	name string
	text string
	m    map[string]any
}

// mergeDocs deep-merges docs in order, as Helm merges --values files left to right, then
// applies set in order, as Helm applies --set and --set-string after every file.
func mergeDocs(docs []valuesDoc, set []helmchart.SetArg) (map[string]any, error) {
	out := map[string]any{}
	for _, d := range docs {
		m := d.m
		if d.text != "" {
			if err := yaml.Unmarshal([]byte(d.text), &m); err != nil {
				return nil, fmt.Errorf("parsing %s: %w", d.name, err)
			}
		}
		out = mergeMaps(out, m)
	}
	for _, arg := range set {
		if err := applySet(out, arg); err != nil {
			return nil, fmt.Errorf("applying set %q (%s): %w", arg.KeyValue, arg.Flag(), err)
		}
	}
	return out, nil
}

// mergeMaps returns a new map with over deep-merged onto base: where both hold a map the
// maps are merged, otherwise over's value (a list, a scalar or null) replaces base's.
// Neither input is modified.
func mergeMaps(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if vm, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bm, vm)
				continue
			}
			out[k] = mergeMaps(nil, vm)
			continue
		}
		out[k] = copyValue(v)
	}
	return out
}

// copyValue returns v with its lists and maps copied: spec.set edits list elements in place
// ("list[0].name=x"), which would otherwise write through to the HelmChart's spec.values.
func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return mergeMaps(nil, v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}

// applySet applies one --set (typed) or --set-string argument to dest, as Helm does.
func applySet(dest map[string]any, arg helmchart.SetArg) error {
	if arg.Typed {
		return strvals.ParseInto(arg.KeyValue, dest)
	}
	return strvals.ParseIntoString(arg.KeyValue, dest)
}

// configHash identifies what a release was installed from: the chart (chartID: the
// chartContent of an inline chart, the digest of a downloaded one), the merged values and
// the target namespace. It is stored on the release as K3s's job stores its
// hash (label helmcharts.helm.cattle.io/configHash), so a restart with nothing
// changed finds the release up to date and makes no Helm upgrade. Label values are at
// most 63 characters, hence the cut.
func configHash(chartID string, values map[string]any, targetNamespace string) (string, error) {
	v, err := json.Marshal(values) // map keys are sorted: the hash is deterministic
	if err != nil {
		return "", fmt.Errorf("hashing values: %w", err)
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(chartID), v, []byte(targetNamespace)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:63], nil
}
