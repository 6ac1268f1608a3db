package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// Placing a Service against only the pods that hold one of its ports must give the answer
// that placing it against every pod gives, reasons included.
func TestPlacementAgainstThePodsHoldingItsPortsIsThePlacementAgainstAll(t *testing.T) {
	bc := newBenchCluster()
	c, err := New(fake.NewClientset(), Options{})
	require.NoError(t, err)
	pods := cache.NewSharedIndexInformer(nil, &corev1.Pod{}, 0, cache.Indexers{})
	dss := cache.NewSharedIndexInformer(nil, &appsv1.DaemonSet{}, 0, cache.Indexers{})
	require.NoError(t, c.useLBCaches(pods, dss))
	for _, pod := range bc.hostPortPods {
		require.NoError(t, pods.GetIndexer().Add(pod))
	}
	all := indexHostPorts(bc.hostPortPods, c.keys)

	taken := 0
	for _, svc := range bc.services[:30] {
		tolerations := defaultTolerations()
		holding, err := c.podsHoldingPorts(svc)
		require.NoError(t, err)
		want := placeLoadBalancer(svc, bc.nodes, tolerations, all, c.keys)
		got := placeLoadBalancer(svc, bc.nodes, tolerations, indexHostPorts(holding, c.keys), c.keys)
		assert.Equal(t, want.String(), got.String(), "Service %s", svc.Name)
		assert.Equal(t, want.eligible, got.eligible, "Service %s", svc.Name)
		for _, r := range want.rejected {
			if r.kind == rejectPortTaken {
				taken++
			}
		}
	}
	assert.NotZero(t, taken, "some Service should find a port taken, or the test shows nothing")
}
