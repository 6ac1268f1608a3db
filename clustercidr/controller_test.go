package clustercidr

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/events"
)

// syncFixture is a Controller wired to a fake clientset and a hand-fed node cache, without
// Start: the tests drive syncNode directly.
type syncFixture struct {
	c        *Controller
	client   *fake.Clientset
	indexer  cache.Indexer
	recorder *record.FakeRecorder
	reg      metrics.KubeRegistry
}

func newSyncFixture(t testing.TB, nodes ...*corev1.Node) *syncFixture {
	return newSyncFixtureWith(t, Options{ClusterCIDRs: pfxs("10.80.0.0/16")}, nodes...)
}

func newSyncFixtureWith(t testing.TB, opts Options, nodes ...*corev1.Node) *syncFixture {
	t.Helper()
	objs := make([]runtime.Object, len(nodes))
	for i, n := range nodes {
		objs[i] = n
	}
	f := &syncFixture{client: fake.NewClientset(objs...), reg: metrics.NewKubeRegistry()}
	opts.MetricsRegistry = f.reg
	c, err := New(f.client, opts)
	require.NoError(t, err)
	informer := informers.NewSharedInformerFactory(f.client, 0).Core().V1().Nodes()
	f.indexer = informer.Informer().GetIndexer()
	for _, n := range nodes {
		require.NoError(t, f.indexer.Add(n))
	}
	c.nodes = informer.Lister()
	f.recorder = record.NewFakeRecorder(len(nodes) + 20)
	c.recorder = f.recorder
	alloc, err := c.rebuild(context.Background())
	require.NoError(t, err)
	c.alloc.Store(alloc)
	f.c = c
	return f
}

func apiNode(name, rv string, podCIDRs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	n.Spec.PodCIDRs = podCIDRs
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR = podCIDRs[0]
	}
	return n
}

// conflictOnce makes the first Node patch fail with Conflict after running meanwhile, which
// stands for another writer.
func (f *syncFixture) conflictOnce(t *testing.T, meanwhile func()) {
	var done atomic.Bool
	f.client.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if done.Swap(true) {
			return false, nil, nil
		}
		if meanwhile != nil {
			meanwhile()
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, a.(k8stesting.PatchAction).GetName(), nil)
	})
}

// patches counts the Node patches sent, answered or not.
func (f *syncFixture) patches() int {
	n := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "nodes" {
			n++
		}
	}
	return n
}

func (f *syncFixture) events() []string {
	return events.Drain(f.recorder)
}

func TestSyncNodePatchesOnceWithTheResourceVersion(t *testing.T) {
	f := newSyncFixture(t, apiNode("n1", "7"))
	_, ctx := ktesting.NewTestContext(t)
	require.NoError(t, f.c.syncNode(ctx, "n1"))

	got, err := f.client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.80.0.0/24"}, got.Spec.PodCIDRs)
	assert.Equal(t, "10.80.0.0/24", got.Spec.PodCIDR)
	assert.Equal(t, 1, f.patches())
	var patch string
	for _, a := range f.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patch = string(p.GetPatch())
		}
	}
	assert.Contains(t, patch, `"resourceVersion":"7"`, "the patch is conditional on the node's version")
}

func TestSyncNodeTakesTheCIDRsAnotherWriterSetAfterAConflict(t *testing.T) {
	f := newSyncFixture(t, apiNode("n1", "7"))
	_, ctx := ktesting.NewTestContext(t)
	f.conflictOnce(t, func() {
		// Another instance set a different block first.
		require.NoError(t, f.client.Tracker().Update(schema.GroupVersionResource{Version: "v1", Resource: "nodes"}, apiNode("n1", "8", "10.80.9.0/24"), ""))
	})
	require.NoError(t, f.c.syncNode(ctx, "n1"))

	held, ok := f.c.allocator().Lookup("n1")
	require.True(t, ok)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.80.9.0/24")}, held.PodCIDRs, "the API's answer wins")
	assert.Equal(t, 1, f.patches(), "no second patch: the node has CIDRs")

	// The block first chosen is free again.
	require.NoError(t, f.indexer.Add(apiNode("n2", "1")))
	require.NoError(t, f.client.Tracker().Add(apiNode("n2", "1")))
	require.NoError(t, f.c.syncNode(ctx, "n2"))
	held, _ = f.c.allocator().Lookup("n2")
	assert.Equal(t, "10.80.0.0/24", held.PodCIDRs[0].String())
}

// TestAnotherWriterMakesTheAllocatorRebuildFromTheAPI: a conflict that shows another
// allocator at work (the Node got other CIDRs than ours) makes the next rebuildIfWanted read
// every Node from the API, so a block that writer gave a Node our cache has not seen yet is
// not handed out again.
func TestAnotherWriterMakesTheAllocatorRebuildFromTheAPI(t *testing.T) {
	f := newSyncFixture(t, apiNode("n1", "7"))
	_, ctx := ktesting.NewTestContext(t)
	nodes := schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	f.conflictOnce(t, func() {
		// The other writer gives n1 the second block and n2, which our cache lacks, the first.
		require.NoError(t, f.client.Tracker().Update(nodes, apiNode("n1", "8", "10.80.1.0/24"), ""))
		require.NoError(t, f.client.Tracker().Add(apiNode("n2", "3", "10.80.0.0/24")))
	})
	require.NoError(t, f.c.syncNode(ctx, "n1"))
	require.True(t, f.c.rebuildWanted.Load(), "another writer was seen")

	f.c.rebuildIfWanted(ctx)
	assert.False(t, f.c.rebuildWanted.Load())
	held, ok := f.c.allocator().Lookup("n2")
	require.True(t, ok, "the rebuilt allocator knows n2 from the API")
	assert.Equal(t, "10.80.0.0/24", held.PodCIDRs[0].String())

	require.NoError(t, f.indexer.Add(apiNode("n3", "1")))
	require.NoError(t, f.client.Tracker().Add(apiNode("n3", "1")))
	require.NoError(t, f.c.syncNode(ctx, "n3"))
	held, _ = f.c.allocator().Lookup("n3")
	assert.Equal(t, "10.80.2.0/24", held.PodCIDRs[0].String(), "neither n1's nor n2's block")
}

func TestSyncNodeRetriesOnTheFreshVersionAfterAConflict(t *testing.T) {
	f := newSyncFixture(t, apiNode("n1", "7"))
	_, ctx := ktesting.NewTestContext(t)
	f.conflictOnce(t, nil)
	require.NoError(t, f.c.syncNode(ctx, "n1"))
	got, err := f.client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"10.80.0.0/24"}, got.Spec.PodCIDRs)
	assert.Equal(t, 2, f.patches())
}

func TestSyncNodeReleasesTheReservationWhenThePatchFails(t *testing.T) {
	f := newSyncFixture(t, apiNode("n1", "7"))
	_, ctx := ktesting.NewTestContext(t)
	f.client.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(assert.AnError)
	})
	require.Error(t, f.c.syncNode(ctx, "n1"), "returned so the queue retries with backoff")
	_, held := f.c.allocator().Lookup("n1")
	assert.False(t, held)
	events := f.events()
	require.Len(t, events, 1)
	assert.True(t, strings.HasPrefix(events[0], "Warning "+ReasonCIDRAssignmentFailed), events[0])
}

func TestSyncNodeKeepsExistingCIDRsAndReleasesDeletedNodes(t *testing.T) {
	f := newSyncFixture(t, apiNode("old", "3", "10.80.0.0/24"), apiNode("outside", "4", "192.168.1.0/24"), apiNode("new", "5"))
	_, ctx := ktesting.NewTestContext(t)
	for _, n := range []string{"old", "outside", "new"} {
		require.NoError(t, f.c.syncNode(ctx, n))
	}
	held, _ := f.c.allocator().Lookup("new")
	assert.Equal(t, "10.80.1.0/24", held.PodCIDRs[0].String(), "restored before allocating")
	assert.Equal(t, 1, f.patches(), "only the new node is patched")
	events := f.events()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], ReasonCIDROutsideClusterCIDRs)

	require.NoError(t, f.indexer.Delete(apiNode("old", "3")))
	require.NoError(t, f.c.syncNode(ctx, "old"))
	_, ok := f.c.allocator().Lookup("old")
	assert.False(t, ok, "a deleted node's CIDRs are free")
}

func TestSyncNodeWaitsForCapacityWithOneEvent(t *testing.T) {
	f := newSyncFixture(t)
	_, ctx := ktesting.NewTestContext(t)
	c, err := New(f.client, Options{ClusterCIDRs: pfxs("10.81.0.0/24")})
	require.NoError(t, err)
	c.nodes, c.recorder = f.c.nodes, f.recorder
	alloc, err := c.rebuild(ctx)
	require.NoError(t, err)
	c.alloc.Store(alloc)
	for _, n := range []*corev1.Node{apiNode("a", "1"), apiNode("b", "1")} {
		require.NoError(t, f.indexer.Add(n))
		require.NoError(t, f.client.Tracker().Add(n))
	}
	require.NoError(t, c.syncNode(ctx, "a"))
	require.NoError(t, c.syncNode(ctx, "b"))
	require.NoError(t, c.syncNode(ctx, "b"))
	events := f.events()
	require.Len(t, events, 1, "one CIDRNotAvailable Event per wait, not per retry")
	assert.Contains(t, events[0], ReasonCIDRNotAvailable)

	require.NoError(t, f.indexer.Delete(apiNode("a", "1")))
	require.NoError(t, c.syncNode(ctx, "a"))
	assert.Equal(t, 1, c.nodeQueue.Len(), "the waiting node is queued again once a block is free")
}

func TestMetricsCountAllocationsAndFreeBlocks(t *testing.T) {
	f := newSyncFixture(t, apiNode("n1", "1"))
	_, ctx := ktesting.NewTestContext(t)
	require.NoError(t, f.c.syncNode(ctx, "n1"))
	families, err := f.reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()] += v
		}
	}
	assert.Equal(t, 1.0, got["clustercidr_allocations_total"])
	assert.Equal(t, 255.0, got["clustercidr_free_cidrs"], "256 /24 blocks in a /16, one used")
}

// BenchmarkSyncNodeFakeAPI is the controller's own cost per new Node: the cache read, the
// allocation and the patch, sent to a fake clientset so the API server's time is left out
// (BenchmarkEndToEnd has it in). The fake still records every action.
func BenchmarkSyncNodeFakeAPI(b *testing.B) {
	nodes := make([]*corev1.Node, b.N)
	for i := range nodes {
		nodes[i] = apiNode(fmt.Sprintf("n%d", i), "1")
	}
	f := newSyncFixtureWith(b, Options{ClusterCIDRs: pfxs("10.0.0.0/8"), NodeCIDRMaskSizeIPv4: 28}, nodes...)
	// The fake clientset's own patch path builds a REST mapper per call (milliseconds);
	// answer patches directly so the number is the controller's.
	f.client.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nodes[0], nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := f.c.syncNode(ctx, nodes[i].Name); err != nil {
			b.Fatal(err)
		}
	}
}
