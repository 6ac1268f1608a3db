package ccmstub

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/internal/events"
)

// fakeLoadBalancer records that the stub started it, and with which factory.
type fakeLoadBalancer struct {
	starts  atomic.Int32
	factory informers.SharedInformerFactory
	err     error
}

func (f *fakeLoadBalancer) Start(_ context.Context, factory informers.SharedInformerFactory) error {
	f.starts.Add(1)
	f.factory = factory
	return f.err
}

func TestNewValidatesOptions(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name    string
		opts    Options
		wantErr []string
	}{
		{name: "both parts off need no load balancer", opts: Options{DisableNodes: true, DisableLoadBalancer: true}},
		{name: "rke2 is a valid program", opts: Options{Program: "rke2", DisableLoadBalancer: true}},
		{name: "the load-balancer part on needs a load balancer", opts: Options{},
			wantErr: []string{"option LoadBalancer is nil while the load-balancer part is on"}},
		{name: "every bad field is reported", opts: Options{Program: "K3s!", Workers: -1, DisableLoadBalancer: true},
			wantErr: []string{`option Program: program "K3s!"`, "option Workers: -1 is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(client, tt.opts)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}
	_, err := New(nil, Options{DisableLoadBalancer: true})
	require.ErrorContains(t, err, "nil client")
}

func TestStartRunsOnlyThePartsThatAreOn(t *testing.T) {
	tests := []struct {
		name                         string
		disableNodes, disableLB      bool
		wantLBStarted, wantNodeWatch bool
	}{
		{name: "K3s's default runs both parts", wantLBStarted: true, wantNodeWatch: true},
		{name: "--disable-cloud-controller runs only the load balancer", disableNodes: true, wantLBStarted: true},
		{name: "--disable=servicelb runs only the node part", disableLB: true, wantNodeWatch: true},
		{name: "both disabled runs nothing at all", disableNodes: true, disableLB: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			client := fake.NewClientset(makeNode("a"))
			lb := &fakeLoadBalancer{}
			c, err := New(client, Options{DisableNodes: tt.disableNodes, DisableLoadBalancer: tt.disableLB, LoadBalancer: lb})
			require.NoError(t, err)
			c.recorder = record.NewFakeRecorder(10)
			factory := informers.NewSharedInformerFactory(client, 0)

			require.NoError(t, c.Start(ctx, factory))

			assert.Equal(t, tt.wantLBStarted, lb.starts.Load() == 1, "load balancer started")
			if tt.wantLBStarted {
				assert.Same(t, factory, lb.factory, "the load balancer shares the caller's factory")
			}
			started := factory.WaitForCacheSync(ctx.Done())
			_, watchesNodes := started[reflect.TypeOf(&corev1.Node{})]
			assert.Equal(t, tt.wantNodeWatch, watchesNodes, "node informer started")
			if !tt.wantLBStarted && !tt.wantNodeWatch {
				assert.Empty(t, started, "no informer at all")
				assert.Empty(t, client.Actions(), "no API call at all")
			}
		})
	}
}

func TestStartReportsTheLoadBalancersError(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	lb := &fakeLoadBalancer{err: errors.New("no namespace")}
	c, err := New(fake.NewClientset(), Options{LoadBalancer: lb})
	require.NoError(t, err)
	err = c.Start(ctx, informers.NewSharedInformerFactory(fake.NewClientset(), 0))
	require.ErrorContains(t, err, "starting the load balancer: no namespace")
	require.ErrorContains(t, c.Start(ctx, nil), "Start called twice")
}

// fixture is a Controller on a fake clientset whose lister the test fills by hand (SC's fixture).
type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	c        *Controller
	indexer  cache.Indexer
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, nodes ...*corev1.Node) *fixture {
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	client := fake.NewClientset(objs...)
	c, err := New(client, Options{DisableLoadBalancer: true})
	require.NoError(t, err)
	informer := informers.NewSharedInformerFactory(client, 0).Core().V1().Nodes()
	for _, n := range nodes {
		require.NoError(t, informer.Informer().GetIndexer().Add(n))
	}
	c.nodes = informer.Lister()
	f := &fixture{t: t, client: client, c: c, indexer: informer.Informer().GetIndexer(), recorder: record.NewFakeRecorder(20)}
	c.recorder = f.recorder
	return f
}

// sync runs one sync of the node and returns the write actions it made.
func (f *fixture) sync(name string) []core.Action {
	f.t.Helper()
	f.client.ClearActions()
	_, ctx := ktesting.NewTestContext(f.t)
	require.NoError(f.t, f.c.syncNode(ctx, cache.ObjectName{Name: name}))
	var writes []core.Action
	for _, a := range f.client.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			writes = append(writes, a)
		}
	}
	return writes
}

// refresh copies the node as the fake API server has it into the lister, as a watch would.
func (f *fixture) refresh(name string) *corev1.Node {
	f.t.Helper()
	n, err := f.client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	require.NoError(f.t, f.indexer.Update(n))
	return n
}

func (f *fixture) events() []string {
	return events.Drain(f.recorder)
}

// patchBody decodes a patch action's body.
func patchBody(t *testing.T, a core.Action) map[string]any {
	t.Helper()
	p, ok := a.(core.PatchAction)
	require.True(t, ok, "%s %s is not a patch", a.GetVerb(), a.GetResource().Resource)
	var body map[string]any
	require.NoError(t, json.Unmarshal(p.GetPatch(), &body))
	return body
}

func TestSyncNodeInitializesThenWritesNothing(t *testing.T) {
	f := newFixture(t, makeNode("a", tainted, annotated(
		"k3s.io/internal-ip", "10.0.0.1,fd00::1",
		"k3s.io/external-ip", "203.0.113.7",
		ProvidedNodeIPAnnotation, "10.0.0.1,fd00::1",
	)))

	writes := f.sync("a")
	require.Len(t, writes, 2, "a status patch, then a spec patch")
	assert.Equal(t, "status", writes[0].GetSubresource(), "addresses are written before the taint goes")
	assert.Equal(t, map[string]any{"status": map[string]any{"addresses": []any{
		map[string]any{"type": "InternalIP", "address": "10.0.0.1"},
		map[string]any{"type": "InternalIP", "address": "fd00::1"},
		map[string]any{"type": "ExternalIP", "address": "203.0.113.7"},
	}}}, patchBody(t, writes[0]))
	assert.Empty(t, writes[1].GetSubresource())
	spec := patchBody(t, writes[1])
	assert.Equal(t, map[string]any{"providerID": "k3s://a", "taints": nil}, spec["spec"])
	assert.Equal(t, map[string]any{corev1.LabelInstanceTypeStable: "k3s", corev1.LabelInstanceType: "k3s"},
		spec["metadata"].(map[string]any)["labels"])
	assert.Contains(t, spec["metadata"], "resourceVersion", "the taint list is replaced only on the version it was computed from")
	events := f.events()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], "Normal Synced Node initialized with addresses InternalIP 10.0.0.1, InternalIP fd00::1, ExternalIP 203.0.113.7 and providerID k3s://a")

	n := f.refresh("a")
	assert.Empty(t, n.Spec.Taints)
	assert.Empty(t, f.sync("a"), "a second sync of the unchanged node writes nothing")
	assert.Empty(t, f.events(), "and sends no Event")
}

func TestSyncNodeWarnsOncePerProblem(t *testing.T) {
	f := newFixture(t, makeNode("a", tainted, annotated(
		"k3s.io/internal-ip", "10.0.0.1,bogus",
		ProvidedNodeIPAnnotation, "10.0.0.9",
	)))

	writes := f.sync("a")
	require.Len(t, writes, 2, "the valid address is written and the labels set, the taint kept")
	assert.NotContains(t, patchBody(t, writes[1])["spec"], "taints")
	events := f.events()
	require.Len(t, events, 2)
	assert.Contains(t, events[0], `Warning InvalidAddress Ignoring annotation k3s.io/internal-ip: "bogus" is not an IP address`)
	assert.Contains(t, events[1], "Warning ProvidedNodeIPNotFound the kubelet's node IP 10.0.0.9")

	f.refresh("a")
	assert.Empty(t, f.sync("a"))
	assert.Empty(t, f.events(), "a problem that stays is not reported again")

	n := f.refresh("a").DeepCopy()
	n.Annotations["k3s.io/internal-ip"] = "10.0.0.1,10.0.0.9"
	n.ResourceVersion = "100"
	require.NoError(t, f.client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("nodes"), n, ""))
	require.NoError(t, f.indexer.Update(n))
	writes = f.sync("a")
	require.Len(t, writes, 2, "the fixed node gets its addresses and loses the taint")
	assert.Contains(t, patchBody(t, writes[1])["spec"], "taints")
	events = f.events()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], "Normal Synced")
}

func TestSyncNodeOfADeletedNodeDoesNothing(t *testing.T) {
	f := newFixture(t)
	assert.Empty(t, f.sync("gone"))
	assert.Empty(t, f.events())
}

func TestHandleNodeUpdateQueuesOnlyChangesTheStubReads(t *testing.T) {
	base := makeNode("a", tainted, annotated("k3s.io/internal-ip", "10.0.0.1"), labelled("l", "v"))
	bump := func(tweak func(*corev1.Node)) *corev1.Node {
		n := base.DeepCopy()
		n.ResourceVersion = "2"
		tweak(n)
		return n
	}
	tests := []struct {
		name      string
		cur       *corev1.Node
		wantQueue bool
	}{
		{name: "a periodic resync (same resourceVersion) is dropped", cur: base.DeepCopy()},
		{name: "a heartbeat that only moves conditions is dropped", cur: bump(func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		})},
		{name: "an annotation change is queued", wantQueue: true, cur: bump(func(n *corev1.Node) { n.Annotations["k3s.io/external-ip"] = "203.0.113.7" })},
		{name: "a label change is queued", wantQueue: true, cur: bump(func(n *corev1.Node) { n.Labels[corev1.LabelInstanceTypeStable] = "x" })},
		{name: "a taint change is queued", wantQueue: true, cur: bump(func(n *corev1.Node) { n.Spec.Taints = nil })},
		{name: "a providerID change is queued", wantQueue: true, cur: bump(func(n *corev1.Node) { n.Spec.ProviderID = "x://a" })},
		{name: "someone else's address write is queued", wantQueue: true, cur: bump(func(n *corev1.Node) { n.Status.Addresses = []corev1.NodeAddress{hostnameAddr("a")} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(fake.NewClientset(), Options{DisableLoadBalancer: true})
			require.NoError(t, err)
			defer c.queue.ShutDown()
			c.handleNodeUpdate(base, tt.cur)
			assert.Equal(t, tt.wantQueue, c.queue.Len() == 1)
		})
	}
}
