package helm

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/k3snet/k3snet/packaged/helmchart"
)

// indexedObject builds a HelmChart or HelmChartConfig reading values Secrets refs.
func indexedObject(kind, ns, name string, refs ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "helm.cattle.io/v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns, "resourceVersion": "1"},
		"spec":     map[string]any{"chart": "x", "repo": "https://example.com", "valuesSecrets": refs},
	}}
}

// valuesRef is a valuesSecrets entry.
func valuesRef(name string, ignoreUpdates bool) map[string]any {
	return map[string]any{"name": name, "keys": []any{"values.yaml"}, "ignoreUpdates": ignoreUpdates}
}

// drain returns the keys in q, sorted.
func drain(q workqueue.TypedRateLimitingInterface[cache.ObjectName]) []string {
	var out []string
	for q.Len() > 0 {
		k, _ := q.Get()
		out = append(out, k.String())
		q.Done(k)
	}
	slices.Sort(out)
	return out
}

func TestHandleSecretQueuesTheChartsThatReadIt(t *testing.T) {
	charts := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{helmchart.SecretRefIndex: helmchart.ChartSecretRefs})
	configs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{helmchart.SecretRefIndex: helmchart.ConfigSecretRefs})
	for _, o := range []*unstructured.Unstructured{
		indexedObject("HelmChart", "ns", "reads", valuesRef("vals", false)),
		indexedObject("HelmChart", "ns", "ignores", valuesRef("vals", true)),
		indexedObject("HelmChart", "other", "elsewhere", valuesRef("vals", false)),
	} {
		require.NoError(t, charts.Add(o))
	}
	require.NoError(t, configs.Add(indexedObject("HelmChartConfig", "ns", "configured", valuesRef("vals", false))))
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName]())
	defer q.ShutDown()
	c := &Controller{chartIndex: charts, configIndex: configs, queue: q}
	secret := func(rv string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "vals", Namespace: "ns", ResourceVersion: rv}}
	}

	c.handleSecretUpdate(secret("1"), secret("2"))
	assert.Equal(t, []string{"ns/configured", "ns/reads"}, drain(q), "the chart naming it and the chart whose config names it; not ignoreUpdates, not another namespace")

	c.handleSecretUpdate(secret("2"), secret("2"))
	assert.Empty(t, drain(q), "a resync changes nothing")

	c.handleSecret(cache.DeletedFinalStateUnknown{Key: "ns/vals", Obj: secret("3")})
	assert.Equal(t, []string{"ns/configured", "ns/reads"}, drain(q), "a deletion seen late")
}
