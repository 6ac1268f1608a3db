package ccmstub

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
)

func TestMetrics(t *testing.T) {
	reg := metrics.NewKubeRegistry()
	c, err := New(fake.NewClientset(), Options{DisableLoadBalancer: true, MetricsRegistry: reg})
	require.NoError(t, err)
	c.metrics.observeSync(nil)
	c.metrics.observeSync(errors.New("conflict"))
	c.metrics.initialized.Inc()
	// Before Start there is no node cache, so no gauge.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ccmstub_node_syncs_total [ALPHA] Node syncs, by result (success or error).
# TYPE ccmstub_node_syncs_total counter
ccmstub_node_syncs_total{result="error"} 1
ccmstub_node_syncs_total{result="success"} 1
# HELP ccmstub_nodes_initialized_total [ALPHA] Nodes whose node.cloudprovider.kubernetes.io/uninitialized taint was removed.
# TYPE ccmstub_nodes_initialized_total counter
ccmstub_nodes_initialized_total 1
`), "ccmstub_node_syncs_total", "ccmstub_nodes_initialized_total", "ccmstub_uninitialized_nodes"))

	// The gauge counts the tainted nodes of the cache.
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	for _, n := range []*corev1.Node{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: UninitializedTaint, Effect: corev1.TaintEffectNoSchedule}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
	} {
		require.NoError(t, factory.Core().V1().Nodes().Informer().GetIndexer().Add(n))
	}
	lister := factory.Core().V1().Nodes().Lister()
	c.metrics.nodes.Store(&lister)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ccmstub_uninitialized_nodes [ALPHA] Nodes that still carry the node.cloudprovider.kubernetes.io/uninitialized taint.
# TYPE ccmstub_uninitialized_nodes gauge
ccmstub_uninitialized_nodes 1
`), "ccmstub_uninitialized_nodes"))

	_, err = New(fake.NewClientset(), Options{DisableLoadBalancer: true, MetricsRegistry: reg})
	assert.Error(t, err, "a second stub on the same registry is refused")
}
