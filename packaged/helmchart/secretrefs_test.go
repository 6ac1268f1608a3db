package helmchart

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSecretRefKeys(t *testing.T) {
	tests := []struct {
		name  string
		refs  []ValuesSecret
		extra []string
		want  []string
	}{
		{
			name: "no Secrets gives no keys",
		},
		{
			name: "values Secrets with keys are watched, in the chart's namespace, sorted and unique",
			refs: []ValuesSecret{{Name: "b", Keys: []string{"v"}}, {Name: "a", Keys: []string{"v"}}, {Name: "b", Keys: []string{"w"}}},
			want: []string{"ns/a", "ns/b"},
		},
		{
			name: "ignoreUpdates Secrets are not watched",
			refs: []ValuesSecret{{Name: "a", Keys: []string{"v"}, IgnoreUpdates: true}, {Name: "b", Keys: []string{"v"}}},
			want: []string{"ns/b"},
		},
		{
			name: "Secrets the controller ignores (K3s's own chart-values-<chart>, no keys) are not watched",
			refs: []ValuesSecret{{Name: "chart-values-web", Keys: []string{"v"}}, {Name: "nokeys"}},
		},
		{
			name:  "auth Secrets are watched, empty names dropped",
			refs:  []ValuesSecret{{Name: "vals", Keys: []string{"v"}}},
			extra: []string{"auth", "", "vals"},
			want:  []string{"ns/auth", "ns/vals"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SecretRefKeys("ns", "web", tt.refs, tt.extra...))
		})
	}
}

func TestChartSecretRefsIndexesAHelmChart(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
		"metadata": map[string]any{"name": "web", "namespace": "ns"},
		"spec": map[string]any{
			"chart": "x", "repo": "https://example.com",
			"authSecret":           map[string]any{"name": "auth"},
			"dockerRegistrySecret": map[string]any{"name": "docker"},
			"valuesSecrets":        []any{map[string]any{"name": "vals", "keys": []any{"values.yaml"}}},
		},
	}}
	got, err := ChartSecretRefs(u)
	require.NoError(t, err)
	assert.Equal(t, []string{"ns/auth", "ns/docker", "ns/vals"}, got)

	u.Object["spec"] = "not an object"
	got, err = ChartSecretRefs(u)
	assert.NoError(t, err, "an index function never fails: the indexer would panic")
	assert.Empty(t, got)
}
