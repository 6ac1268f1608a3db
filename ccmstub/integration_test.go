package ccmstub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/k3snet/k3snet/ccmstub"
	"github.com/k3snet/k3snet/internal/testcluster"
)

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(cluster.Run(m)) }

var taint = corev1.Taint{Key: ccmstub.UninitializedTaint, Value: "true", Effect: corev1.TaintEffectNoSchedule}

// nodeWrites returns the writes to the named Node and its status.
func nodeWrites(w *testcluster.WriteCounter, name string) []string {
	var out []string
	for _, s := range w.Since(0) {
		if strings.HasSuffix(s, "/nodes/"+name) || strings.HasSuffix(s, "/nodes/"+name+"/status") {
			out = append(out, s)
		}
	}
	return out
}

// testContext is t.Context with logs to t at V(2): the decisions, not every object.
func testContext(t *testing.T) context.Context {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2)))
	return klog.NewContext(t.Context(), logger)
}

// startStub runs the stub until the test ends as a user bound to ccmstub.ClusterRole only,
// with one worker so that the nodes are synced in the order their events arrive, and returns
// the counter of its writes and its factory.
func startStub(t *testing.T, c *testcluster.Cluster, opts ccmstub.Options) (*testcluster.WriteCounter, informers.SharedInformerFactory) {
	t.Helper()
	cfg := c.ImpersonateRole(t, testcluster.UniqueName("k3snet-ccmstub"), ccmstub.ClusterRole())
	counter := &testcluster.WriteCounter{}
	cfg.Wrap(counter.Wrap)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	opts.Workers = 1
	ctrl, err := ccmstub.New(client, opts)
	require.NoError(t, err)
	// A short resync makes the informer replay every node during the test; the stub must
	// write nothing for those.
	factory := informers.NewSharedInformerFactory(client, time.Second)
	// Shutdown waits for the informers, which stop with the test's context, so the next
	// test's nodes are never seen by this test's stub.
	t.Cleanup(factory.Shutdown)
	require.NoError(t, ctrl.Start(testContext(t), factory))
	return counter, factory
}

// waitNode polls the node until cond holds and returns it; on timeout it shows the node.
func waitNode(t *testing.T, c *testcluster.Cluster, name, what string, cond func(*corev1.Node) bool) *corev1.Node {
	t.Helper()
	var last *corev1.Node
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = n
		return cond(n), nil
	})
	if err != nil {
		t.Fatalf("node %s: %s: %v\nlast seen: taints %v, providerID %q, addresses %v, labels %v, annotations %v",
			name, what, err, last.Spec.Taints, last.Spec.ProviderID, last.Status.Addresses, last.Labels, last.Annotations)
	}
	return last
}

// waitEvent polls for an Event on the node with reason whose message contains text. Matching the message matters: kwok's status rewrite (see
// TestNodeIsInitializedFromItsAnnotations) can cause an earlier Event of the same reason.
func waitEvent(t *testing.T, c *testcluster.Cluster, node, reason, text string) {
	t.Helper()
	var seen []string
	err := c.Poll(t.Context(), func(ctx context.Context) (bool, error) {
		seen = seen[:0]
		for _, e := range nodeEvents(t, c, node, reason) {
			seen = append(seen, e.Message)
		}
		return slices.ContainsFunc(seen, func(m string) bool { return strings.Contains(m, text) }), nil
	})
	require.NoError(t, err, "no %s Event containing %q on node %s; seen %q", reason, text, node, seen)
}

func nodeEvents(t *testing.T, c *testcluster.Cluster, node, reason string) []corev1.Event {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": node}
	if reason != "" {
		sel["reason"] = reason
	}
	list, err := c.Client.CoreV1().Events("").List(t.Context(), metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	require.NoError(t, err)
	return list.Items
}

func hasTaint(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == ccmstub.UninitializedTaint })
}

func hasInternalIP(n *corev1.Node) bool {
	return slices.ContainsFunc(n.Status.Addresses, func(a corev1.NodeAddress) bool { return a.Type == corev1.NodeInternalIP })
}

func initialized(n *corev1.Node) bool { return !hasTaint(n) && hasInternalIP(n) }

func addr(typ corev1.NodeAddressType, a string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: typ, Address: a}
}

// annotate merge-patches the node's annotations as the admin; a nil value removes one.
func annotate(t *testing.T, c *testcluster.Cluster, name string, kv map[string]any) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": kv}})
	require.NoError(t, err)
	_, err = c.Client.CoreV1().Nodes().Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
}

func TestNodeIsInitializedFromItsAnnotations(t *testing.T) {
	c := cluster.Get(t)
	startStub(t, c, ccmstub.Options{DisableLoadBalancer: true})
	name := testcluster.UniqueName("init")
	c.AddNodes(t, testcluster.Node(name, testcluster.Taints(taint), testcluster.Annotations(map[string]string{
		"k3s.io/internal-ip":             "10.0.0.1,fd00::1",
		"k3s.io/external-ip":             "203.0.113.7",
		"k3s.io/internal-dns":            name + ".internal",
		"k3s.io/hostname":                name,
		ccmstub.ProvidedNodeIPAnnotation: "10.0.0.1,fd00::1",
	})))

	// kwok's node-initialize stage rewrites the whole status from the node as it read it before
	// the stub's write, wiping status.addresses once (seen in managedFields: kwok, Update,
	// status); the stub puts them back from the annotations. Wait for the settled state.
	want := []corev1.NodeAddress{
		addr(corev1.NodeInternalIP, "10.0.0.1"),
		addr(corev1.NodeInternalIP, "fd00::1"),
		addr(corev1.NodeExternalIP, "203.0.113.7"),
		addr(corev1.NodeInternalDNS, name+".internal"),
		addr(corev1.NodeHostName, name),
	}
	n := waitNode(t, c, name, "initialized with K3s's address order, dual stack as written", func(n *corev1.Node) bool {
		return initialized(n) && reflect.DeepEqual(n.Status.Addresses, want)
	})
	assert.Equal(t, "k3s://"+name, n.Spec.ProviderID)
	assert.Equal(t, "k3s", n.Labels[corev1.LabelInstanceTypeStable])
	assert.Equal(t, "k3s", n.Labels[corev1.LabelInstanceType])
	waitEvent(t, c, name, ccmstub.ReasonSynced, "removed taint "+ccmstub.UninitializedTaint)
}

func TestNodeWithoutAnnotationsKeepsTheTaintUntilAnnotated(t *testing.T) {
	c := cluster.Get(t)
	startStub(t, c, ccmstub.Options{DisableLoadBalancer: true})
	bare := testcluster.UniqueName("bare")
	marker := testcluster.UniqueName("marker")
	// bare is created first; with one worker, marker's initialization shows that the stub has
	// already synced bare.
	c.AddNodes(t,
		testcluster.Node(bare, testcluster.Taints(taint)),
		testcluster.Node(marker, testcluster.Taints(taint), testcluster.Annotations(map[string]string{"k3s.io/internal-ip": "10.0.2.1"})),
	)
	waitNode(t, c, marker, "initialized", initialized)

	n, err := c.Client.CoreV1().Nodes().Get(t.Context(), bare, metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, hasTaint(n), "a node whose agent has not annotated it keeps the taint")
	assert.False(t, hasInternalIP(n), "and gets no addresses: %v", n.Status.Addresses)
	assert.Empty(t, n.Spec.ProviderID, "nor a providerID, which could never be changed again")

	// The agent side publishes the addresses; the stub reacts to that update at once.
	err = ccmstub.AnnotateNode(t.Context(), c.Client, ccmstub.NodeConfig{
		Name:        bare,
		InternalIPs: []netip.Addr{netip.MustParseAddr("10.0.2.2")},
		Hostname:    "localhost",
	})
	require.NoError(t, err)
	n = waitNode(t, c, bare, "initialized after AnnotateNode", initialized)
	assert.Equal(t, []corev1.NodeAddress{addr(corev1.NodeInternalIP, "10.0.2.2"), addr(corev1.NodeHostName, bare)}, n.Status.Addresses,
		"a host named localhost is published under the node name")
}

func TestAnnotationChangeUpdatesAddresses(t *testing.T) {
	c := cluster.Get(t)
	startStub(t, c, ccmstub.Options{DisableLoadBalancer: true})
	name := testcluster.UniqueName("change")
	c.AddNodes(t, testcluster.Node(name, testcluster.Taints(taint), testcluster.Annotations(map[string]string{
		"k3s.io/internal-ip": "10.0.3.1",
		"k3s.io/external-ip": "203.0.113.30",
		"k3s.io/hostname":    name,
	})))
	waitNode(t, c, name, "initialized", initialized)

	annotate(t, c, name, map[string]any{"k3s.io/internal-ip": "10.0.3.1,fd00::3", "k3s.io/external-ip": "203.0.113.31"})
	want := []corev1.NodeAddress{
		addr(corev1.NodeInternalIP, "10.0.3.1"),
		addr(corev1.NodeInternalIP, "fd00::3"),
		addr(corev1.NodeExternalIP, "203.0.113.31"),
		addr(corev1.NodeHostName, name),
	}
	waitNode(t, c, name, "addresses follow the annotations", func(n *corev1.Node) bool { return reflect.DeepEqual(n.Status.Addresses, want) })
	waitEvent(t, c, name, ccmstub.ReasonAddressesUpdated, "ExternalIP 203.0.113.31")

	// Dropping --node-external-ip on the agent removes the annotation, and so the address.
	err := ccmstub.AnnotateNode(t.Context(), c.Client, ccmstub.NodeConfig{
		Name:        name,
		InternalIPs: []netip.Addr{netip.MustParseAddr("10.0.3.1"), netip.MustParseAddr("fd00::3")},
		Hostname:    name,
	})
	require.NoError(t, err)
	want = slices.Delete(slices.Clone(want), 2, 3)
	waitNode(t, c, name, "the external IP is gone", func(n *corev1.Node) bool { return reflect.DeepEqual(n.Status.Addresses, want) })
}

func TestInvalidAnnotationIsReportedAndValidAddressesKept(t *testing.T) {
	c := cluster.Get(t)
	startStub(t, c, ccmstub.Options{DisableLoadBalancer: true})
	name := testcluster.UniqueName("garbage")
	c.AddNodes(t, testcluster.Node(name, testcluster.Taints(taint), testcluster.Annotations(map[string]string{
		"k3s.io/internal-ip": "10.0.4.1,not-an-ip,127.0.0.1",
		"k3s.io/external-ip": "203.0.113.400,0.0.0.0",
	})))

	n := waitNode(t, c, name, "initialized from the valid address", initialized)
	assert.Contains(t, n.Status.Addresses, addr(corev1.NodeInternalIP, "10.0.4.1"))
	for _, bad := range []string{"not-an-ip", "127.0.0.1", "0.0.0.0"} {
		assert.NotContains(t, fmt.Sprint(n.Status.Addresses), bad)
	}
	var messages []string
	err := c.Poll(t.Context(), func(context.Context) (bool, error) {
		messages = messages[:0]
		for _, e := range nodeEvents(t, c, name, ccmstub.ReasonInvalidAddress) {
			assert.Equal(t, corev1.EventTypeWarning, e.Type)
			messages = append(messages, e.Message)
		}
		return len(messages) == 4, nil
	})
	require.NoError(t, err, "one Warning per bad value; got %q", messages)
	assert.Contains(t, strings.Join(messages, "\n"), `annotation k3s.io/internal-ip: "not-an-ip" is not an IP address`)
	assert.Contains(t, strings.Join(messages, "\n"), `annotation k3s.io/external-ip: "203.0.113.400" is not an IP address`)
	assert.Contains(t, strings.Join(messages, "\n"), `annotation k3s.io/internal-ip: "127.0.0.1" is a loopback address`)
	assert.Contains(t, strings.Join(messages, "\n"), `annotation k3s.io/external-ip: "0.0.0.0" is the unspecified address`)
}

func TestKubeletNodeIPMissingFromAddressesKeepsTheTaint(t *testing.T) {
	c := cluster.Get(t)
	startStub(t, c, ccmstub.Options{DisableLoadBalancer: true})
	name := testcluster.UniqueName("mismatch")
	c.AddNodes(t, testcluster.Node(name, testcluster.Taints(taint), testcluster.Annotations(map[string]string{
		"k3s.io/internal-ip":             "10.0.5.1",
		ccmstub.ProvidedNodeIPAnnotation: "10.0.5.99",
	})))

	waitEvent(t, c, name, ccmstub.ReasonProvidedNodeIPNotFound, "the kubelet's node IP 10.0.5.99")
	// The Event follows the sync that decided to keep the taint.
	n, err := c.Client.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, hasTaint(n), "the node keeps the taint")

	annotate(t, c, name, map[string]any{"k3s.io/internal-ip": "10.0.5.99,10.0.5.1"})
	waitNode(t, c, name, "initialized once the kubelet's IP is annotated", initialized)
}

// TestNodePartOffLeavesNodesTainted is the --disable-cloud-controller case: the stub still
// hosts the load balancer but never touches a node, which waits for an external CCM.
func TestNodePartOffLeavesNodesTainted(t *testing.T) {
	c := cluster.Get(t)
	lb := &fakeLoadBalancer{}
	counter, factory := startStub(t, c, ccmstub.Options{DisableNodes: true, LoadBalancer: lb})
	assert.Equal(t, int32(1), lb.starts.Load(), "the load balancer runs")
	_, watchesNodes := factory.WaitForCacheSync(t.Context().Done())[reflect.TypeOf(&corev1.Node{})]
	assert.False(t, watchesNodes, "no node informer")

	name := testcluster.UniqueName("external")
	c.AddNodes(t, testcluster.Node(name, testcluster.Taints(taint), testcluster.Annotations(map[string]string{"k3s.io/internal-ip": "10.0.6.1"})))
	// There is nothing to wait for when nothing happens: watch for a while that nothing does.
	assert.Never(t, func() bool {
		n, err := c.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		return err != nil || !hasTaint(n) || hasInternalIP(n)
	}, 2*time.Second, 100*time.Millisecond, "the node stays tainted and without addresses")
	assert.Empty(t, nodeWrites(counter, name))
}

// fakeLoadBalancer stands in for the ServiceLB controller.
type fakeLoadBalancer struct{ starts atomic.Int32 }

func (f *fakeLoadBalancer) Start(context.Context, informers.SharedInformerFactory) error {
	f.starts.Add(1)
	return nil
}

func TestUnchangedNodeIsNotWrittenAgain(t *testing.T) {
	c := cluster.Get(t)
	counter, _ := startStub(t, c, ccmstub.Options{DisableLoadBalancer: true})
	quiet := testcluster.UniqueName("quiet")
	marker := testcluster.UniqueName("marker")
	c.AddNodes(t,
		testcluster.Node(quiet, testcluster.Taints(taint), testcluster.Annotations(map[string]string{"k3s.io/internal-ip": "10.0.7.1"})),
		testcluster.Node(marker, testcluster.Taints(taint), testcluster.Annotations(map[string]string{"k3s.io/internal-ip": "10.0.7.2"})),
	)
	waitNode(t, c, quiet, "initialized", initialized)
	waitNode(t, c, marker, "initialized", initialized)
	before := nodeWrites(counter, quiet)
	require.NotEmpty(t, before, "the counter sees the stub's writes")
	eventsBefore := len(nodeEvents(t, c, quiet, ""))

	// An update that changes nothing the stub derives from, then, with one worker, a change
	// on marker: once marker's addresses follow, the stub has synced quiet again. The factory
	// resyncs every second meanwhile.
	annotate(t, c, quiet, map[string]any{"example.com/touched": "yes"})
	annotate(t, c, marker, map[string]any{"k3s.io/external-ip": "203.0.113.70"})
	waitNode(t, c, marker, "the marker's external IP", func(n *corev1.Node) bool {
		return slices.Contains(n.Status.Addresses, addr(corev1.NodeExternalIP, "203.0.113.70"))
	})
	waitEvent(t, c, marker, ccmstub.ReasonAddressesUpdated, "ExternalIP 203.0.113.70")

	assert.Equal(t, before, nodeWrites(counter, quiet), "no write to the unchanged node")
	assert.Len(t, nodeEvents(t, c, quiet, ""), eventsBefore, "no Event on the unchanged node")
}

func TestAnnotateNodeAddsAndRemovesAnnotations(t *testing.T) {
	c := cluster.Get(t)
	name := testcluster.UniqueName("agent")
	// An old node: its agent once wrote the legacy labels, which are kept up to date.
	c.AddNodes(t, testcluster.Node(name, testcluster.Labels(map[string]string{
		"k3s.io/internal-ip": "10.0.8.9",
		"k3s.io/hostname":    "old-host",
	}), testcluster.Annotations(map[string]string{"example.com/other": "kept"})))
	get := func() *corev1.Node {
		n, err := c.Client.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		return n
	}
	ip := netip.MustParseAddr
	cfg := ccmstub.NodeConfig{
		Name:        name,
		InternalIPs: []netip.Addr{ip("fd00::8"), ip("10.0.8.1")},
		ExternalIPs: []netip.Addr{ip("203.0.113.80")},
		InternalDNS: []string{name + ".internal"},
		ExternalDNS: []string{name + ".example.com"},
		Hostname:    "host-8",
	}
	require.NoError(t, ccmstub.AnnotateNode(t.Context(), c.Client, cfg))
	n := get()
	assert.Equal(t, "fd00::8,10.0.8.1", n.Annotations["k3s.io/internal-ip"])
	assert.Equal(t, "203.0.113.80", n.Annotations["k3s.io/external-ip"])
	assert.Equal(t, name+".internal", n.Annotations["k3s.io/internal-dns"])
	assert.Equal(t, name+".example.com", n.Annotations["k3s.io/external-dns"])
	assert.Equal(t, "host-8", n.Annotations["k3s.io/hostname"])
	assert.Equal(t, "kept", n.Annotations["example.com/other"])
	assert.Equal(t, map[string]string{"k3s.io/internal-ip": "10.0.8.1", "k3s.io/external-ip": "203.0.113.80", "k3s.io/hostname": "host-8"},
		pick(n.Labels, "k3s.io/internal-ip", "k3s.io/external-ip", "k3s.io/hostname"), "legacy labels refreshed, IPv4 since a label cannot hold IPv6")

	cfg.ExternalIPs, cfg.ExternalDNS = nil, nil
	require.NoError(t, ccmstub.AnnotateNode(t.Context(), c.Client, cfg))
	n = get()
	assert.NotContains(t, n.Annotations, "k3s.io/external-ip", "a dropped external IP is removed (K3s keeps it)")
	assert.NotContains(t, n.Annotations, "k3s.io/external-dns")
	assert.NotContains(t, n.Labels, "k3s.io/external-ip")
	assert.Equal(t, "fd00::8,10.0.8.1", n.Annotations["k3s.io/internal-ip"])

	cfg.DisableCloudController = true
	require.NoError(t, ccmstub.AnnotateNode(t.Context(), c.Client, cfg))
	n = get()
	for _, k := range []string{"k3s.io/internal-ip", "k3s.io/external-ip", "k3s.io/internal-dns", "k3s.io/external-dns", "k3s.io/hostname"} {
		assert.NotContains(t, n.Annotations, k, "--disable-cloud-controller leaves addresses to an external CCM")
		assert.NotContains(t, n.Labels, k)
	}
	assert.Equal(t, "kept", n.Annotations["example.com/other"])

	err := ccmstub.AnnotateNode(t.Context(), c.Client, ccmstub.NodeConfig{Name: "no-such-node", InternalIPs: cfg.InternalIPs})
	require.Error(t, err)
	assert.True(t, apierrors.IsNotFound(err), "a missing node is NotFound for the caller to retry: %v", err)
	assert.False(t, errors.Is(err, ccmstub.ErrInvalidNodeName))
}

func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
