package helm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// FuzzMergeValues merges any HelmChart and HelmChartConfig values: an error naming the layer,
// or values that encode to JSON (the config hash), are the same on a second merge, leave the
// inputs untouched, and give HelmChartConfig's plain values precedence over HelmChart's.
func FuzzMergeValues(f *testing.F) {
	f.Add("image:\n  tag: v1\nports: [80]\n", "a: {b: 1}", "image:\n  tag: v2\n", "secret: s", "image.tag", "v3", int32(0), uint8(0))
	f.Add("list:\n- name: x\n  v: 1\n", "", "", "", "list[0].v", "2", int32(0), uint8(0))
	f.Add("", "list:\n- {name: x}", "x: null", "", "list[0].name", "", int32(7), uint8(1))
	f.Add("a: [", "", "", "", "a.b", "c,d", int32(0), uint8(0))
	f.Add("", "", "", "", "a[70000]", "x", int32(0), uint8(0))
	f.Add("", "", "", "", "a.b", "TRUE", int32(0), uint8(0))
	f.Fuzz(func(t *testing.T, chartContent, chartValues, configContent, secret, setKey, setStr string, setInt int32, flags uint8) {
		var chartMap map[string]any
		if yaml.Unmarshal([]byte(chartValues), &chartMap) != nil {
			chartMap = nil // spec.values is an object in the API; anything else cannot be stored
		}
		l := valuesLayers{chartValuesContent: chartContent, chartValues: chartMap, chartSecrets: []string{secret},
			configValuesContent: configContent}
		if setKey != "" {
			v := intstr.FromString(setStr)
			if flags&1 != 0 {
				v = intstr.FromInt32(setInt)
			}
			l.set = map[string]intstr.IntOrString{setKey: v}
		}
		chartBefore := deepCopyJSON(t, chartMap)
		out, err := mergeValues(l)
		if !reflect.DeepEqual(chartBefore, chartMap) {
			t.Fatalf("mergeValues modified HelmChart spec.values: %v became %v", chartBefore, chartMap)
		}
		if err != nil {
			if out != nil || !strings.Contains(err.Error(), "parsing HelmChart") && !strings.Contains(err.Error(), "parsing HelmChartConfig") &&
				!strings.Contains(err.Error(), "applying set") {
				t.Fatalf("merge error %v does not name its layer", err)
			}
			return
		}
		hash, err := configHash("chart", out, "ns")
		if err != nil {
			t.Fatalf("merged values do not encode: %v", err)
		}
		again, err := mergeValues(l)
		if err != nil {
			t.Fatal(err)
		}
		if hash2, _ := configHash("chart", again, "ns"); hash2 != hash || len(hash) != 63 {
			t.Fatalf("a second merge hashes to %s, not %s", hash2, hash)
		}
		if setKey != "" {
			return
		}
		var config map[string]any
		if yaml.Unmarshal([]byte(configContent), &config) != nil {
			t.Fatal("HelmChartConfig valuesContent merged although it does not parse")
		}
		for k, v := range config {
			if _, isMap := v.(map[string]any); !isMap && !reflect.DeepEqual(out[k], v) {
				t.Fatalf("key %q is %v, want HelmChartConfig's %v", k, out[k], v)
			}
		}
	})
}

// deepCopyJSON copies m through JSON, which is what an API object's values are.
func deepCopyJSON(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	if m == nil {
		return nil
	}
	js, err := json.Marshal(m)
	if err != nil {
		t.Skip("values that are not JSON cannot come from the API")
	}
	var out map[string]any
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
