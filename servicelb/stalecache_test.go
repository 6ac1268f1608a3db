package servicelb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/k3snet/k3snet/internal/events"
)

// TestSyncBeforeTheCacheCatchesUpWritesNothingAgain: a pod event can sync a Service again
// before the informers have delivered the DaemonSet apply and the status patch of the last
// sync. That sync must compare against what was written, not re-apply the DaemonSet, patch
// the same status and announce both a second time; once the DaemonSet is deleted, it is
// applied again.
func TestSyncBeforeTheCacheCatchesUpWritesNothingAgain(t *testing.T) {
	svc := makeService()
	svc.Finalizers = []string{LoadBalancerCleanupFinalizer}
	svc.ResourceVersion = "10"
	node := makeNode("a", internalIP("10.0.0.1"))
	client := fake.NewClientset(svc.DeepCopy(), node.DeepCopy())
	c, err := New(client, Options{})
	require.NoError(t, err)
	recorder := record.NewFakeRecorder(10)
	c.recorder = recorder

	// Caches filled by hand and never updated: they stay as the first sync found them.
	factory := informers.NewSharedInformerFactory(client, 0)
	add := func(inf cache.SharedIndexInformer, objs ...runtime.Object) {
		for _, o := range objs {
			require.NoError(t, inf.GetIndexer().Add(o))
		}
	}
	require.NoError(t, c.useLBCaches(factory.Core().V1().Pods().Informer(), factory.Apps().V1().DaemonSets().Informer()))
	add(factory.Core().V1().Services().Informer(), svc)
	add(factory.Core().V1().Nodes().Informer(), node)
	add(factory.Core().V1().Pods().Informer(), lbPod(svc, "a", "10.42.0.5"))
	c.services = factory.Core().V1().Services().Lister()
	c.nodes = factory.Core().V1().Nodes().Lister()
	c.slices = factory.Discovery().V1().EndpointSlices().Lister()

	writes := func() []string {
		var out []string
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
				out = append(out, a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource())
			}
		}
		client.ClearActions()
		return out
	}
	key := cache.MetaObjectToName(svc)
	require.NoError(t, c.sync(t.Context(), key))
	assert.Equal(t, []string{"patch daemonsets/", "patch services/status"}, writes(), "the first sync applies and publishes")
	assert.Len(t, events.Drain(recorder), 2, "and announces both")

	require.NoError(t, c.sync(t.Context(), key))
	assert.Empty(t, writes(), "a sync on the stale cache writes nothing again")
	assert.Empty(t, events.Drain(recorder), "and announces nothing again")

	// Someone deletes the DaemonSet; the cache shows it absent, as before our apply.
	ds := &appsv1.DaemonSet{}
	ds.Namespace, ds.Name = c.opts.Namespace, daemonSetName(svc.Name, svc.UID)
	c.handleDaemonSetDelete(ds)
	require.NoError(t, c.sync(t.Context(), key))
	assert.Equal(t, []string{"patch daemonsets/"}, writes(), "a deleted DaemonSet is applied again")
}
